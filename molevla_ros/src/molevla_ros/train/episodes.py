"""Recorded MCAP episodes -> training arrays (one sample per control step)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mcap.reader import make_reader
import torch
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image, JointState
from tqdm import tqdm
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from molevla_ros.inputs.images import decode
from molevla_ros.model.config import VisionConfig
from molevla_ros.model.mole_vla import resize_images
from molevla_ros.topics import TOPIC_SIM_STATE
from molevla_ros.sim.ground_truth import marker_positions
from molevla_ros.train.geometry import POINTS, goal_points


@dataclass
class Samples:
    images: np.ndarray  # [N, S, S, 3] uint8, already at the model's input size
    proprio: np.ndarray  # [N, 9] float32
    chunks: np.ndarray  # [N, H, 7] float32
    instructions: list[str]
    families: list[str]
    episode: np.ndarray  # [N] episode index
    # [N, 3, 2] base-frame xy of the goal's cube, goal and push start (train/geometry.py); NaN where the family has no
    # such point or the episode was recorded without the simulator's ground truth. None: no ground truth at all.
    geometry: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.chunks)


def step_in_episode(episode: np.ndarray) -> np.ndarray:
    """Control-step index within its episode of every sample (samples of an episode are consecutive)."""
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    return np.arange(len(episode)) - np.repeat(starts, np.diff(np.r_[starts, len(episode)]))


def read_episode(path: Path, vision: VisionConfig) -> tuple[dict[str, str], list[tuple[np.ndarray, np.ndarray,
                                                                                          np.ndarray, np.ndarray]]]:
    """(metadata, [(image, proprio, chunk, goal geometry) per control step]) of one recorded episode; images resized to
    the model's input size the way serving resizes them; the geometry is NaN without recorded ground truth."""
    steps: dict[int, dict] = {}
    with open(path, "rb") as f:
        reader = make_reader(f)
        meta = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
        for _, channel, message in reader.iter_messages(topics=["/molevla/image", "/joint_states",
                                                               "/molevla/action_chunk", "/" + TOPIC_SIM_STATE]):
            step = steps.setdefault(message.log_time, {})
            if channel.topic == "/molevla/image":
                m = deserialize_message(message.data, Image)
                rgb = decode(m.encoding, m.height, m.width, m.step, m.data)
                if rgb.shape[:2] != (vision.image_size, vision.image_size):
                    x = resize_images(torch.from_numpy(np.ascontiguousarray(rgb))[None], vision)[0]
                    rgb = (x.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
                step["image"] = rgb
            elif channel.topic == "/joint_states":
                step["proprio"] = np.asarray(deserialize_message(message.data, JointState).position, np.float32)
            elif channel.topic == "/molevla/action_chunk":
                traj = deserialize_message(message.data, JointTrajectory)
                step["chunk"] = np.array([p.positions for p in traj.points], np.float32)
            else:
                step["objects"] = marker_positions(deserialize_message(message.data, MarkerArray))
    info = {**meta.get("molevla_episode", {}), **meta.get("molevla_result", {})}
    unknown = np.full((len(POINTS), 2), np.nan, np.float32)
    rows = [(s["image"], s["proprio"], s["chunk"],
             goal_points(info["instruction"], s["objects"]) if "objects" in s else unknown)
            for _, s in sorted(steps.items()) if {"image", "proprio", "chunk"} <= s.keys()]
    return info, rows


CACHE_VERSION = 1  # raise when read_episode's output changes for the same recording


def cached_episode(path: Path, vision: VisionConfig) -> tuple[dict[str, str], list[tuple]]:
    """read_episode through a cache beside the recording (.cache/<name>.<size>-<resize>.npz): decoding and resizing
    the frames is most of the loading time, and every training run reads the same episodes again. The cache is
    rebuilt when the recording's size or modification time (or CACHE_VERSION) changes."""
    st = path.stat()
    key = f"{CACHE_VERSION}:{st.st_size}:{st.st_mtime_ns}"
    cache = path.parent / ".cache" / f"{path.stem}.{vision.image_size}-{vision.resize}.npz"
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    arrays = [z[k] for k in ("images", "proprio", "chunks", "geometry")]
                    return json.loads(str(z["info"])), list(zip(*arrays))
        except (OSError, ValueError, KeyError):
            pass  # unreadable or from another version: rebuilt below
    info, rows = read_episode(path, vision)
    columns = [np.stack(c) for c in zip(*rows)] if rows else [np.zeros(0)] * 4
    cache.parent.mkdir(exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, key=key, info=json.dumps(info), **dict(zip(("images", "proprio", "chunks", "geometry"), columns)))
    os.replace(tmp, cache)
    return info, rows


def load_samples(folders: Path | str, vision: VisionConfig, only_successful: bool = True, horizon: int = 16,
                 action_dt: float = 0.1, keys: tuple[str, str, str] = ("", "observation.state", "action")) -> Samples:
    """Every control step of the sources in ``folders`` (comma-separated): folders of `molevla collect` episodes
    (.mcap) and LeRobot datasets (dataset/lerobot_samples.py: chunks of ``horizon`` rows, one ``action_dt`` apart;
    ``keys``: its image, state and action features, "" for the first image). With ``only_successful``, failed
    expert demonstrations are skipped; episodes a trained policy drove (DAgger) or the expert drove with noise
    (DART) are kept whatever their outcome: their labels are the expert's clean chunks, and their failures are the
    point."""
    from molevla_ros.dataset.lerobot_samples import is_lerobot_dataset, load_lerobot

    names = [Path(f) for f in str(folders).split(",") if f]
    parts = [load_lerobot(n, vision, horizon, action_dt, *keys) for n in names if is_lerobot_dataset(n)]
    recorded = [n for n in names if not is_lerobot_dataset(n)]
    if recorded or not parts:
        parts.insert(0, _load_recordings(recorded, vision, only_successful))
    return _concatenate(parts)


def _concatenate(parts: list[Samples]) -> Samples:
    if len(parts) == 1:
        return parts[0]
    episodes, offset = [], 0
    for p in parts:
        episodes.append(p.episode + offset)
        offset += int(p.episode.max()) + 1 if len(p) else 0
    points = np.concatenate([p.geometry if p.geometry is not None else np.full((len(p), len(POINTS), 2), np.nan,
                                                                                np.float32) for p in parts])
    for name in ("proprio", "chunks"):
        shapes = {getattr(p, name).shape[1:] for p in parts}
        if len(shapes) > 1:
            raise ValueError(f"the sources' {name} do not match in shape: {sorted(shapes)}")
    return Samples(np.concatenate([p.images for p in parts]), np.concatenate([p.proprio for p in parts]),
                   np.concatenate([p.chunks for p in parts]), [t for p in parts for t in p.instructions],
                   [f for p in parts for f in p.families], np.concatenate(episodes),
                   None if np.isnan(points).all() else points)


def _load_recordings(names: list[Path], vision: VisionConfig, only_successful: bool) -> Samples:
    files = sorted(f for name in names for f in name.glob("*.mcap"))
    if not files:
        raise FileNotFoundError(f"no .mcap episodes or LeRobot dataset in {','.join(map(str, names))} (record "
                                "some with `molevla collect`, or convert bags with `molevla dataset from-bags`)")
    images, proprio, chunks, geometry, instr, fams, ep = [], [], [], [], [], [], []
    for i, f in enumerate(tqdm(files, desc="loading episodes", unit="ep")):
        info, rows = cached_episode(f, vision)
        expert_driven = info.get("policy", "scripted_expert") == "scripted_expert"
        if only_successful and expert_driven and info.get("success") != "true":
            continue
        for img, q, c, g in rows:
            images.append(img)
            proprio.append(q)
            chunks.append(c)
            geometry.append(g)
            instr.append(info["instruction"])
            fams.append(info["family"])
            ep.append(i)
    points = np.stack(geometry)
    return Samples(np.stack(images), np.stack(proprio), np.stack(chunks), instr, fams, np.array(ep),
                   None if np.isnan(points).all() else points)
