"""`molevla dataset from-bags`: rosbag2 recordings (rclpy-serialised messages, MCAP and sqlite3 storage) -> a
LeRobot dataset that LeRobot's own code opens, with labels the executor turns back into the recorded motion."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import transforms3d
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from bag_recordings import FR3, Recording, arm_path, frame, write_bag
from molevla_ros import franka_kinematics as kin
from molevla_ros.control.chunk_executor import ChunkExecutor, Limits
from molevla_ros.dataset.from_bags import DatasetOptions, convert
from molevla_ros.dataset.lerobot_samples import chunks_of


def _convert(bags: list[Path], out: Path, **kw) -> list:
    return convert(DatasetOptions(action="from-bags", bags=tuple(map(str, bags)), out=str(out), **kw))


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("bags")
    bags = [write_bag(root / "raw_mcap", Recording(), "mcap"),
            write_bag(root / "compressed_sqlite", Recording(compressed=True, goals=[
                (0.0, "touch the red cube"), (2.5, "touch the blue cube")]), "sqlite3")]
    return root / "dataset", _convert(bags, root / "dataset", image_size=0)


def test_mcap_and_sqlite3_bags_become_a_dataset_lerobot_opens(converted):
    folder, reports = converted
    assert [r.reason for r in reports] == ["", "", ""], reports
    ds = LeRobotDataset("local/molevla", root=folder)
    assert ds.meta.info["codebase_version"] == "v3.0" and ds.fps == 10 and ds.meta.robot_type == "fr3"
    assert ds.num_episodes == 3 and len(ds) == sum(r.rows for r in reports)
    assert [ds.meta.episodes[i]["tasks"][0] for i in range(3)] == [
        "put the red cube in the tray", "touch the red cube", "touch the blue cube"]
    assert ds.meta.features["observation.state"]["names"] == list(FR3.arm_joints + FR3.finger_joints)
    for key in ("action", "observation.state"):
        assert {"q01", "q99", "mean", "std"} <= set(ds.meta.stats[key])
    # Row 7 of the first episode: the frame at 0.7 s (frame 21 of 30 Hz, the red channel is its index), the last
    # joint state at or before it (100 Hz: exactly at 0.7 s), half the finger width per finger (open: 0.04).
    item = ds[7]
    image = (item["observation.images.main"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(image, frame(21))
    np.testing.assert_allclose(item["observation.state"][:7].numpy(), arm_path(np.array([0.7]))[0], atol=1e-6)
    np.testing.assert_allclose(item["observation.state"][7:].numpy(), [0.04, 0.04], atol=1e-6)
    second = [ds[i]["frame_index"].item() for i in range(len(ds)) if ds[i]["episode_index"].item() == 2]
    assert second == list(range(len(second))) and 20 <= len(second) <= 25  # 2.5 s .. 5 s at 10 Hz, minus the end


def _replay(actions: np.ndarray, dt: float = 0.1, tick: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    """The hand's poses at the start of each action when `actions` run as one chunk through the executor, its
    twist integrated (rotation with transforms3d's axis-angle, independent of the package's rotation code)."""
    loose = Limits(10.0, 50.0, 1e6, 1e6, 1e9, 1e9, None, None)  # the limits are not under test: labels are
    ex = ChunkExecutor(dt, loose, chunk_timeout=100.0, max_chunk_age=100.0)
    assert ex.add_chunk(0.0, actions, 0.0, times=[i * dt for i in range(len(actions))]) is None
    p, r = np.zeros(3), np.eye(3)
    poses = []
    steps_per_action = round(dt / tick)
    for k in range(len(actions) * steps_per_action):
        if k % steps_per_action == 0:
            poses.append((p.copy(), r.copy()))
        cmd = ex.step(k * tick + tick / 2, tick)
        p = p + cmd.linear * tick
        angle = np.linalg.norm(cmd.angular) * tick
        if angle > 0:
            r = transforms3d.axangles.axangle2mat(cmd.angular, angle) @ r
    return np.array([x for x, _ in poses]), np.array([x for _, x in poses])


def test_derived_actions_run_through_the_executor_retrace_the_recorded_hand_path(converted):
    folder, _ = converted
    ds = LeRobotDataset("local/molevla", root=folder)
    rows = [ds[i] for i in range(len(ds)) if ds[i]["episode_index"].item() == 0]
    actions = np.stack([r["action"].numpy() for r in rows]).astype(float)
    t = np.array([r["timestamp"].item() for r in rows])
    truth = np.stack([kin.forward(q) for q in arm_path(t)])  # the recorded joints' hand poses at the rows
    p, r = _replay(actions)
    p_err = np.linalg.norm(p + truth[0, :3, 3] - truth[:, :3, 3], axis=1)
    rel = np.einsum("nij,nkj->nik", r @ truth[0, :3, :3], truth[:, :3, :3])  # replayed R times recorded R^T
    r_err = np.array([transforms3d.axangles.mat2axangle(m)[1] for m in rel])
    assert p_err.max() < 0.002 and r_err.max() < 0.02, (p_err.max(), r_err.max())
    assert np.abs(truth[:, :3, 3] - truth[0, :3, 3]).max() > 0.05  # the path is long enough to show an error
    assert r_err.max() < 0.2 * np.max([transforms3d.axangles.mat2axangle(truth[i, :3, :3] @ truth[0, :3, :3].T)[1]
                                       for i in range(len(t))])
    # the gripper: open until the fingers start closing at 2.0 s, closed while they rest and settle on the object,
    # open from 4 s
    np.testing.assert_array_equal(actions[:, 6], ((t < 1.95) | (t > 3.95)).astype(float))


def test_bad_bags_are_reported_and_skipped_while_the_rest_converts(tmp_path):
    bags = {
        "good": Recording(),
        "no_fingers": Recording(skip_topics=("/franka_gripper/joint_states",)),
        "camera_gap": Recording(camera_gap=(1.0, 2.0)),
        "too_short": Recording(duration=0.35),
        "corrupt_joints": Recording(corrupt_joint_states=3),
        "no_goal": Recording(goals=[]),
        "failed_demo": Recording(custom={"molevla.success": "false"}),
        "goal_in_metadata": Recording(goals=[], custom={"molevla.task": "touch the blue cube"}),
    }
    paths = [write_bag(tmp_path / "bags" / name, rec) for name, rec in bags.items()]
    broken = tmp_path / "bags" / "broken"
    broken.mkdir()
    (broken / "metadata.yaml").write_text("rosbag2_bagfile_information: [")
    reports = {Path(r.bag).name: r for r in _convert([tmp_path / "bags"], tmp_path / "ds")}
    assert sorted(reports) == sorted([p.name for p in paths] + ["broken"])
    assert reports["good"].reason == "" and reports["good"].rows == 49
    assert reports["no_fingers"].reason.startswith("missing topic: /franka_gripper/joint_states")
    assert reports["camera_gap"].reason.startswith("time jump: the camera has a 1.0")
    assert reports["too_short"].reason.startswith("empty episode")
    assert reports["corrupt_joints"].reason == "" and reports["corrupt_joints"].corrupt == 3
    assert reports["no_goal"].reason.startswith("no goal")
    assert reports["failed_demo"].reason.startswith("a failed demonstration")
    assert reports["goal_in_metadata"].reason == "" and reports["goal_in_metadata"].task == "touch the blue cube"
    assert reports["broken"].reason.startswith("unreadable bag")
    ds = LeRobotDataset("local/molevla", root=tmp_path / "ds")
    written = [r for r in reports.values() if not r.reason]
    assert ds.num_episodes == 3 and len(ds) == sum(r.rows for r in written)
    # --task names the goal of bags that record none
    again = _convert([tmp_path / "bags" / "no_goal"], tmp_path / "ds2", task="touch the green cube")
    assert again[0].reason == "" and again[0].task == "touch the green cube"


def test_stale_joint_states_drop_frames(tmp_path):
    """A joint state stream slower than max_age leaves the frames between its messages without state."""
    bag = write_bag(tmp_path / "slow", Recording(joints_hz=4.0))
    report = _convert([bag], tmp_path / "ds", max_age=0.1, max_gap=0.5)[0]
    assert report.reason == "" and report.stale > report.rows > 0
    assert report.rows + report.stale + report.no_next == 51  # the frames nearest to 0, 0.1 .. 5.0 s
    # only the 10 frames at the joint states' own times (0, 0.5, .. 4.5 s) are fresh within 1 ms: too few
    report = _convert([bag], tmp_path / "ds2", max_age=0.001, max_gap=0.5, min_rows=11)[0]
    assert report.reason == "empty episode: 10 usable frames (< min_rows 11)" and report.stale == 41


def test_chunks_hold_still_past_the_episode_end():
    actions = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    episode = np.array([0, 0, 0, 1, 1])
    chunks = chunks_of(actions, episode, horizon=3)
    np.testing.assert_array_equal(chunks[0], actions[:3])
    np.testing.assert_array_equal(chunks[2, 0], actions[2])
    assert (chunks[2, 1:, :6] == 0).all() and (chunks[2, 1:, 6] == actions[2, 6]).all()
    np.testing.assert_array_equal(chunks[3, :2], actions[3:5])


def test_train_reads_the_converted_dataset_and_refuses_a_wrong_rate(converted, tmp_path):
    from molevla_ros.model.config import small
    from molevla_ros.train.config import TrainConfig
    from molevla_ros.train.episodes import load_samples
    from molevla_ros.train.trainer import train

    folder, reports = converted
    cfg = small()
    data = load_samples(str(folder), cfg.vision, horizon=cfg.action_head.horizon, action_dt=cfg.action_dt)
    size = cfg.vision.image_size
    assert data.images.shape == (sum(r.rows for r in reports), size, size, 3) and data.proprio.shape[1] == 9
    assert data.chunks.shape[1:] == (cfg.action_head.horizon, 7) and data.geometry is None
    with pytest.raises(ValueError, match="--fps 20"):
        load_samples(str(folder), cfg.vision, action_dt=0.05)
    with pytest.raises(ValueError, match="no feature 'observation.joints'"):
        load_samples(str(folder), cfg.vision, keys=("", "observation.joints", "action"))
    train(TrainConfig(out=str(tmp_path / "run"), data=str(folder), steps=2, batch=4, save_every=2,
                      wording="canonical"), cfg)
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_a_dataset_made_elsewhere_maps_its_feature_names(tmp_path):
    """A LeRobot dataset written by someone else's code (LeRobot's own writer, other feature names, two cameras)
    trains through --image-key / --state-key / --action-key."""
    from molevla_ros.model.config import small
    from molevla_ros.train.episodes import load_samples

    features = {"observation.images.front": {"dtype": "image", "shape": (40, 50, 3), "names": ["height", "width",
                                                                                            "channel"]},
                "observation.images.wrist": {"dtype": "image", "shape": (40, 50, 3), "names": ["height", "width",
                                                                                            "channel"]},
                "observation.joints": {"dtype": "float32", "shape": (9,), "names": None},
                "actions": {"dtype": "float32", "shape": (7,), "names": None}}
    ds = LeRobotDataset.create("someone/else", fps=10, features=features, root=tmp_path / "other", use_videos=False)
    rng = np.random.default_rng(0)
    for episode, length in enumerate((6, 4)):
        for i in range(length):
            ds.add_frame({"observation.images.front": np.full((40, 50, 3), 10 * i, np.uint8),
                          "observation.images.wrist": np.full((40, 50, 3), 255, np.uint8),
                          "observation.joints": rng.normal(size=9).astype(np.float32),
                          "actions": np.full(7, 100 * episode + i, np.float32), "task": f"goal {episode}"})
        ds.save_episode()
    ds.finalize()
    cfg = small()
    with pytest.raises(ValueError, match="no feature 'observation.state'"):
        load_samples(str(tmp_path / "other"), cfg.vision)
    data = load_samples(str(tmp_path / "other"), cfg.vision, horizon=3,
                        keys=("observation.images.front", "observation.joints", "actions"))
    assert data.images.shape == (10, cfg.vision.image_size, cfg.vision.image_size, 3)
    assert data.images[3].max() == 30 and data.images[3].min() == 30  # the front camera, not the wrist one
    assert data.instructions == ["goal 0"] * 6 + ["goal 1"] * 4 and list(data.episode) == [0] * 6 + [1] * 4
    np.testing.assert_array_equal(data.chunks[4, :, 0], [4, 5, 0])  # the episode ends: no motion
    np.testing.assert_array_equal(data.chunks[6, :, 0], [100, 101, 102])
