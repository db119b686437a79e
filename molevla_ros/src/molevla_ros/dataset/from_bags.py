"""`molevla dataset from-bags`: rosbag2 recordings of a robot (MCAP or sqlite3) -> a LeRobot dataset (v3).

What a real robot's recording holds is enough: camera frames (sensor_msgs/Image or CompressedImage), joint states
(the arm's and the fingers', which franka_ros2 publishes on a topic of their own) and, optionally, the language
goals (std_msgs/String). Each goal message starts an episode; a bag without one takes the goal from its metadata
(custom_data molevla.task) or `--task`, and a bag marked molevla.success: false is skipped. Every row is a
camera frame, taken at `fps` (the model's 1 / action_dt by default), with the latest joint state at or before it
(within `max_age`, else the frame is dropped as stale) and the action the recording shows over the next action_dt
(dataset/labels.py: forward kinematics of the interpolated joint states, fingers' motion for the gripper).
Bags are read with `rosbags` (no ROS install needed); the dataset is written by LeRobot's own dataset code, which
also computes the statistics (min/max/mean/std and q01..q99) that training normalises with.

A bag or episode that cannot be used (unreadable, a topic missing, time jumps, too few usable frames) is reported
with its reason and skipped; the rest is converted. `meta/molevla_conversion.json` keeps the per-episode report.
"""
from __future__ import annotations

import importlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import yaml
from tqdm import tqdm

from molevla_ros import robot_profile
from molevla_ros.config_cli import REQUIRED, option
from molevla_ros.control.chunk_executor import ACTION_NAMES
from molevla_ros.dataset import labels
from molevla_ros.inputs.images import ImageError, decode_compressed, resize
from molevla_ros.inputs.joint_states import JointStateError, read_joint_state
from molevla_ros.nodes.messages import msg_to_frame, msg_to_rgb, stamp_s
# rosbag2 metadata custom_data keys (`ros2 bag record --custom-data KEY=VALUE`): the bag's goal where no goal message
# was recorded, and "false" for a demonstration that failed (skipped).
TASK_KEY, SUCCESS_KEY = "molevla.task", "molevla.success"


@dataclass
class DatasetOptions:
    action: str = option(REQUIRED, "what to do", choices=("from-bags",), positional=True)
    bags: tuple[str, ...] = option(REQUIRED, "rosbag2 folders (MCAP or sqlite3), or folders that hold them",
                                   positional=True)
    out: str = option(REQUIRED, "the dataset folder to create (LeRobot dataset v3)")
    robot: str = option("fr3", "robot profile (a name or a YAML path): joint names, the fingers' topic, open width")
    camera_topic: str = option("/image_raw", "the reference camera: sensor_msgs/Image, or CompressedImage (on "
                               "<topic>/compressed where <topic> is absent, as image_transport names it)")
    camera_name: str = option("main", "the dataset's image key is observation.images.<camera_name>")
    joint_states_topic: str = option("", "the arm's sensor_msgs/JointState (default: the profile's joint_states)")
    fingers_topic: str = option("", "the fingers' JointState (default: the profile's gripper joint_states)")
    goal_topic: str = option("/molevla/instruction", "std_msgs/String goals; each one starts an episode")
    task: str = option("", "the goal of bags that record none")
    action_dt: float = option(0.1, "seconds each action spans (the model's action_dt)")
    fps: float = option(0.0, "rows per second (0: 1 / action_dt, so that a chunk is consecutive rows)")
    max_age: float = option(0.1, "a joint state older than this at a frame makes the frame stale (s)")
    max_gap: float = option(0.5, "a longer gap between camera frames or joint states is a time jump (s)")
    image_size: int = option(224, "frames are resized to this square (0: kept as recorded)")
    min_rows: int = option(5, "episodes with fewer usable frames are skipped")
    stamps: str = option("header", "message times: header stamps (the log time where a stamp is zero) or log time",
                         choices=("header", "log"))
    repo_id: str = option("local/molevla", "the dataset's name in its metadata")


@dataclass
class EpisodeReport:
    bag: str
    task: str
    frames: int = 0  # camera frames in the episode's time span
    rows: int = 0  # written
    stale: int = 0  # dropped: no joint state within max_age at or before the frame
    no_next: int = 0  # dropped: no joint states over the next action_dt (the end of the recording)
    unreadable: int = 0  # camera frames that did not decode
    corrupt: int = 0  # messages of the bag (any topic read) that did not deserialize
    reason: str = ""  # why the episode was skipped ("": written)


@dataclass
class Streams:
    """One bag's messages on the topics the conversion reads, times in seconds."""
    camera_topic: str = ""
    camera: list[tuple[float, int]] = field(default_factory=list)  # (time, index among the topic's messages)
    arm: list[tuple[float, np.ndarray]] = field(default_factory=list)  # arm joint positions in profile order
    fingers: list[tuple[float, np.ndarray]] = field(default_factory=list)  # finger joint positions
    goals: list[tuple[float, str]] = field(default_factory=list)
    task: str = ""  # the bag's metadata custom_data molevla.task
    corrupt: Counter = field(default_factory=Counter)  # topic -> messages that did not deserialize


def _topic(name: str) -> str:
    return name if name.startswith("/") else "/" + name


def _stamp(msg: object, log_ns: int, source: str) -> float:
    stamp = getattr(getattr(msg, "header", None), "stamp", None)
    if source == "header" and stamp is not None and (stamp.sec or stamp.nanosec):
        return stamp_s(stamp)
    return log_ns * 1e-9


def _positions(msg: object, names: tuple[str, ...]) -> np.ndarray | None:
    """The `names` joints' positions, or None where the message lacks one or is not usable (the nodes' own check:
    duplicate names, a names/positions mismatch, NaN/Inf)."""
    try:
        return read_joint_state(msg.name, msg.position, 0.0, 0.0, names, max_age=0.0)
    except JointStateError:
        return None


def _custom_data(bag: Path) -> dict:
    """metadata.yaml's custom_data (rosbag2 metadata version 6 and later); {} where there is none."""
    info = yaml.safe_load((bag / "metadata.yaml").read_text()) if (bag / "metadata.yaml").is_file() else None
    custom = (info or {}).get("rosbag2_bagfile_information", {}).get("custom_data") if isinstance(info, dict) else None
    return custom if isinstance(custom, dict) else {}


class Unusable(ValueError):
    """A bag that is read fine but cannot give an episode (the message says why)."""


def _open(path: Path):
    """A rosbags reader of the bag at `path` (message types it cannot import come from the Jazzy type store)."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    return AnyReader([path], default_typestore=get_typestore(Stores.ROS2_JAZZY))


def _deserializer(reader: object, msgtype: str) -> Callable[[bytes], object]:
    """Bytes -> message. rclpy's (the ROS client library's own CDR) where the message package is importable: rosbags'
    decoder refuses the trailing alignment padding rclcpp/rclpy write, e.g. in every JointState whose velocity or
    effort is empty ("CDR message size mismatch"). rosbags' otherwise, for types this install lacks."""
    package, _, name = msgtype.partition("/msg/")
    try:
        from rclpy.serialization import deserialize_message

        cls = getattr(importlib.import_module(f"{package}.msg"), name)
        return lambda raw: deserialize_message(bytes(raw), cls)
    except (ImportError, AttributeError):
        return lambda raw: reader.deserialize(raw, msgtype)


def read_bag(path: Path, o: DatasetOptions, profile: robot_profile.RobotProfile) -> Streams:
    """The bag's camera frame times, arm and finger positions and goals (the frames themselves are decoded later,
    only those that become rows: `decode_frames`); raises on an unreadable bag or a missing topic."""
    camera, goal = _topic(o.camera_topic), _topic(o.goal_topic)
    arm = _topic(o.joint_states_topic or profile.joint_states)
    fingers = _topic(o.fingers_topic or profile.gripper.joint_states or profile.joint_states)
    s = Streams()
    clock_offsets = []  # camera header stamp - log time: goals (no header) are put on the camera's clock
    with _open(path) as reader:
        custom = _custom_data(path)
        if str(custom.get(SUCCESS_KEY, "")).lower() == "false":
            raise Unusable(f"a failed demonstration (metadata custom_data {SUCCESS_KEY}: false)")
        s.task = str(custom.get(TASK_KEY, ""))
        present = {c.topic for c in reader.connections}
        if camera not in present and camera + "/compressed" in present:  # image_transport's compressed topic
            camera += "/compressed"
        missing = [t for t in dict.fromkeys((camera, arm, fingers)) if t not in present]
        if missing:
            raise Unusable(f"missing topic: {', '.join(missing)} (the bag has "
                               f"{', '.join(sorted(present)) or 'nothing'})")
        s.camera_topic = camera
        wanted = [c for c in reader.connections if c.topic in {camera, arm, fingers, goal}]
        decoders = {c.msgtype: _deserializer(reader, c.msgtype) for c in wanted}
        n_frames = 0
        for conn, log_ns, raw in reader.messages(connections=wanted):
            k, n_frames = n_frames, n_frames + (conn.topic == camera)
            try:
                msg = decoders[conn.msgtype](raw)
            except Exception:  # noqa: BLE001 (any decoding failure of one message: counted, the rest goes on)
                s.corrupt[conn.topic] += 1
                continue
            t = _stamp(msg, log_ns, o.stamps)
            if conn.topic == camera:
                s.camera.append((t, k))
                clock_offsets.append(t - log_ns * 1e-9)
            if conn.topic == goal and hasattr(msg, "data"):
                s.goals.append((log_ns * 1e-9, str(msg.data)))
            if conn.topic in (arm, fingers) and hasattr(msg, "name"):
                if conn.topic == arm and (q := _positions(msg, profile.arm_joints)) is not None:
                    s.arm.append((t, q))
                if conn.topic == fingers and (q := _positions(msg, profile.finger_joints)) is not None:
                    s.fingers.append((t, q))
    offset = float(np.median(clock_offsets)) if clock_offsets else 0.0
    s.goals = [(t + offset, text) for t, text in s.goals]
    return s


def decode_frames(path: Path, topic: str, wanted: set[int], size: int) -> dict[int, np.ndarray | None]:
    """RGB uint8 frames (resized to size x size; 0: as recorded) of the camera messages numbered `wanted` (their
    order on `topic`); None for a frame that does not decode. A second pass over the bag: only these frames are
    ever held in memory."""
    out: dict[int, np.ndarray | None] = {}
    with _open(path) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        decoders = {c.msgtype: _deserializer(reader, c.msgtype) for c in connections}
        for k, (conn, _, raw) in enumerate(reader.messages(connections=connections)):
            if k not in wanted:
                continue
            try:
                msg = decoders[conn.msgtype](raw)
                if hasattr(msg, "encoding"):  # sensor_msgs/Image: decoded as the camera node decodes it
                    out[k] = msg_to_frame(msg, size, size) if size else msg_to_rgb(msg)
                else:
                    rgb = decode_compressed(msg.format, bytes(np.asarray(msg.data, np.uint8)))
                    out[k] = resize(rgb, size, size) if size else rgb
            except ImageError:
                out[k] = None
    return out


def _time_jump(times: np.ndarray, what: str, max_gap: float) -> str:
    steps = np.diff(times)
    if len(steps) and steps.min() < 0:
        i = int(np.argmin(steps))
        return f"time jump: {what} stamps go back {-steps[i]:.3f} s at t={times[i]:.3f}"
    if len(steps) and steps.max() > max_gap:
        i = int(np.argmax(steps))
        return f"time jump: {what} has a {steps[i]:.3f} s gap at t={times[i]:.3f} (max_gap {max_gap} s)"
    return ""


def _on_grid(times: np.ndarray, period: float) -> np.ndarray:
    """Indices of the frames nearest to the ticks times[0] + k * period (each within half a period, no repeats)."""
    if not len(times):
        return np.zeros(0, int)
    ticks = np.arange(times[0], times[-1] + period / 2, period)
    nearest = np.clip(np.searchsorted(times, ticks), 1, len(times) - 1)
    nearest = np.where(np.abs(times[nearest - 1] - ticks) <= np.abs(times[nearest] - ticks), nearest - 1, nearest)
    if len(times) == 1:
        nearest = np.zeros(len(ticks), int)
    keep = np.abs(times[nearest] - ticks) <= period / 2
    return np.unique(nearest[keep])


def episode_rows(s: Streams, start: float, end: float, report: EpisodeReport, o: DatasetOptions,
                 open_width: float) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(camera message number, state [arm + fingers], action [7]) rows of the camera frames in [start, end); fills
    `report`."""
    cam_t = np.array([t for t, _ in s.camera])
    in_span = np.flatnonzero((cam_t >= start) & (cam_t < end))
    report.frames = len(in_span)
    arm_t, arm_q = np.array([t for t, _ in s.arm]), np.array([q for _, q in s.arm])
    fin_t, fin_q = np.array([t for t, _ in s.fingers]), np.array([q for _, q in s.fingers])
    if len(in_span) < 2 or len(arm_t) < 2 or len(fin_t) < 2:
        report.reason = (f"empty episode: {len(in_span)} camera frames, {len(arm_t)} arm and {len(fin_t)} finger "
                         "joint states")
        return []
    span = (arm_t >= start - o.max_gap) & (arm_t < end + o.max_gap)
    report.reason = (_time_jump(cam_t[in_span], "the camera", o.max_gap)
                     or _time_jump(arm_t[span], "the arm's joint states", o.max_gap)
                     or _time_jump(fin_t[(fin_t >= start) & (fin_t < end)], "the fingers' joint states", o.max_gap))
    if report.reason:
        return []
    frames = in_span[_on_grid(cam_t[in_span], 1.0 / (o.fps or 1.0 / o.action_dt))]
    t = cam_t[frames]
    i_arm, i_fin = labels.latest_at(arm_t, t, o.max_age), labels.latest_at(fin_t, t, o.max_age)
    fresh = (i_arm >= 0) & (i_fin >= 0)
    q_now, ok_now = labels.interpolate(arm_t, arm_q, t, o.max_gap)
    q_next, ok_next = labels.interpolate(arm_t, arm_q, t + o.action_dt, o.max_gap)
    w_now, okw_now = labels.interpolate(fin_t, fin_q.sum(1, keepdims=True), t, o.max_gap)
    w_next, okw_next = labels.interpolate(fin_t, fin_q.sum(1, keepdims=True), t + o.action_dt, o.max_gap)
    has_next = ok_now & ok_next & okw_now & okw_next
    report.stale = int((~fresh).sum())
    report.no_next = int((fresh & ~has_next).sum())
    use = fresh & has_next
    p0, r0 = labels.ee_poses(q_now[use])
    p1, r1 = labels.ee_poses(q_next[use])
    grip = labels.gripper_commands(w_now[use, 0], w_next[use, 0], open_width)
    actions = np.concatenate([labels.pose_deltas(p0, r0, p1, r1), grip[:, None]], axis=1).astype(np.float32)
    return [(s.camera[frames[j]][1], np.concatenate([arm_q[i_arm[j]], fin_q[i_fin[j]]]).astype(np.float32),
             actions[k]) for k, j in enumerate(np.flatnonzero(use))]


def with_frames(rows: list[tuple[int, np.ndarray, np.ndarray]], frames: dict[int, np.ndarray | None],
                report: EpisodeReport, min_rows: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`episode_rows`' rows with their decoded frames (rows whose frame did not decode are dropped and counted);
    none when fewer than `min_rows` remain."""
    out = [(frames[k], state, action) for k, state, action in rows if frames.get(k) is not None]
    report.unreadable, report.rows = len(rows) - len(out), len(out)
    if len(out) < min_rows:
        report.reason, report.rows = f"empty episode: {len(out)} usable frames (< min_rows {min_rows})", 0
        return []
    return out


def episodes_of(s: Streams, bag: str, task: str) -> list[tuple[float, float, EpisodeReport]]:
    """(start, end, report) per episode: one per recorded goal (until the next one), else the whole bag under the
    bag metadata's task or `task`; an empty list when the bag has none of them."""
    goals = sorted(s.goals)
    if goals:
        ends = [t for t, _ in goals[1:]] + [np.inf]
        return [(t, e, EpisodeReport(bag, text)) for (t, text), e in zip(goals, ends)]
    task = s.task or task
    return [(-np.inf, np.inf, EpisodeReport(bag, task))] if task else []


def find_bags(paths: tuple[str, ...]) -> list[Path]:
    """rosbag2 folders (those with a metadata.yaml) among `paths` and the folders under them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "metadata.yaml").exists() or not p.is_dir():
            out.append(p)
        else:  # (hidden folders are skipped: `molevla collect` records into .recording/ first)
            out += sorted(m.parent for m in p.rglob("metadata.yaml")
                          if not any(part.startswith(".") for part in m.relative_to(p).parts))
    return out


def _features(image_shape: tuple[int, ...], profile: robot_profile.RobotProfile, camera: str) -> dict:
    return {
        f"observation.images.{camera}": {"dtype": "image", "shape": image_shape, "names": ["height", "width",
                                                                                          "channel"]},
        "observation.state": {"dtype": "float32", "shape": (len(profile.arm_joints) + len(profile.finger_joints),),
                              "names": list(profile.arm_joints + profile.finger_joints)},
        "action": {"dtype": "float32", "shape": (len(ACTION_NAMES),), "names": ACTION_NAMES},
    }


def convert(o: DatasetOptions) -> list[EpisodeReport]:
    """Convert `o.bags` into a LeRobot dataset at `o.out`; the per-episode reports (also printed and saved)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out = Path(o.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty: choose a new folder for the dataset")
    profile = robot_profile.load(o.robot)
    reports: list[EpisodeReport] = []
    dataset = None
    for bag in tqdm(find_bags(o.bags), desc="converting bags", unit="bag"):
        try:
            streams = read_bag(bag, o, profile)
        except Unusable as e:
            reports.append(EpisodeReport(str(bag), o.task, reason=str(e)))
            continue
        except Exception as e:  # noqa: BLE001 (an unreadable bag is reported and skipped)
            reports.append(EpisodeReport(str(bag), o.task, reason=f"unreadable bag: {' '.join(str(e).split())}"))
            continue
        episodes = episodes_of(streams, str(bag), o.task)
        if not episodes:
            reports.append(EpisodeReport(str(bag), "", reason=f"no goal: nothing on {_topic(o.goal_topic)}, no "
                                         f"{TASK_KEY} in the bag's metadata, no --task"))
        planned = []
        for start, end, report in episodes:
            reports.append(report)
            report.corrupt = sum(streams.corrupt.values())
            planned.append((report, episode_rows(streams, start, end, report, o, profile.gripper.width_open)))
        frames = decode_frames(bag, streams.camera_topic, {k for _, rows in planned for k, _, _ in rows},
                               o.image_size)
        for report, rows in planned:
            rows = with_frames(rows, frames, report, o.min_rows) if not report.reason else []
            if not rows:
                continue
            if dataset is None:
                dataset = LeRobotDataset.create(o.repo_id, fps=round(o.fps or 1.0 / o.action_dt), root=out,
                                                robot_type=profile.name, use_videos=False,
                                                features=_features(rows[0][0].shape, profile, o.camera_name))
            for image, state, action in rows:
                dataset.add_frame({f"observation.images.{o.camera_name}": image, "observation.state": state,
                                   "action": action, "task": report.task})
            dataset.save_episode()
        for topic, n in streams.corrupt.items():
            print(f"{bag}: {n} messages on {topic} did not deserialize (skipped)")
    if dataset is not None:
        dataset.finalize()
        (out / "meta" / "molevla_conversion.json").write_text(json.dumps(
            {"options": asdict(o), "episodes": [asdict(r) for r in reports]}, indent=1, default=str))
    print_reports(reports)
    return reports


def print_reports(reports: list[EpisodeReport]) -> None:
    """frames: camera frames in the episode; rows: written; stale: no joint state within max_age; end: no joint
    states over the next action_dt; bad img: frames that did not decode; bad msg: messages of the bag that did not
    deserialize."""
    print(f"{'bag':32} {'frames':>6} {'rows':>5} {'stale':>5} {'end':>4} {'bad img':>7} {'bad msg':>7}  "
          "task, or why it was skipped")
    for r in reports:
        print(f"{Path(r.bag).name[-32:]:32} {r.frames:6d} {r.rows:5d} {r.stale:5d} {r.no_next:4d} {r.unreadable:7d} "
              f"{r.corrupt:7d}  {r.reason or r.task}")
    written = [r for r in reports if not r.reason]
    print(f"{len(written)} episodes, {sum(r.rows for r in written)} rows written; {len(reports) - len(written)} "
          "skipped")


def run(o: DatasetOptions) -> None:
    reports = convert(o)
    if not any(not r.reason for r in reports):
        raise SystemExit("no episode could be converted (reasons above)")
