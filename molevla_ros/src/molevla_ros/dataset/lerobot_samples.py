"""A LeRobot dataset (v3, any producer) -> training samples: the frames at the model's input size, the state, and
per frame the chunk of the next `horizon` actions of its episode (the rows are one action_dt apart).

Feature names default to what `molevla dataset from-bags` writes and LeRobot's conventions ("observation.state",
"action", the first "observation.images.*"); datasets of other users map theirs with the train options
`--image-key`, `--state-key`, `--action-key`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from molevla_ros.model.config import VisionConfig
from molevla_ros.model.mole_vla import resize_images


def is_lerobot_dataset(folder: Path) -> bool:
    return (Path(folder) / "meta" / "info.json").exists()


def chunks_of(actions: np.ndarray, episode: np.ndarray, horizon: int, gripper_index: int = 6) -> np.ndarray:
    """[N, horizon, D]: row i's actions i, i+1, ... of its episode; past the episode's end, no motion and the last
    gripper command (the arm holds still)."""
    out = np.zeros((len(actions), horizon, actions.shape[1]), actions.dtype)
    ends = np.r_[np.flatnonzero(episode[1:] != episode[:-1]) + 1, len(actions)]
    end = np.repeat(ends, np.diff(np.r_[0, ends]))
    for k in range(horizon):
        j = np.minimum(np.arange(len(actions)) + k, end - 1)
        inside = np.arange(len(actions)) + k < end
        out[:, k] = np.where(inside[:, None], actions[j], 0.0)
        out[~inside, k, gripper_index] = actions[j[~inside], gripper_index]
    return out


def load_lerobot(folder: Path | str, vision: VisionConfig, horizon: int, action_dt: float, image_key: str = "",
                 state_key: str = "observation.state", action_key: str = "action"):
    """Samples (train/episodes.py) of the LeRobot dataset at `folder`; raises ValueError naming what does not fit."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from molevla_ros.train.episodes import Samples

    folder = Path(folder)
    ds = LeRobotDataset(folder.name, root=folder)
    features = ds.meta.features
    images = [k for k in features if k.startswith("observation.images.")]
    image_key = image_key or (images[0] if images else "")
    for key in (image_key, state_key, action_key):
        if key not in features:
            raise ValueError(f"{folder}: no feature {key!r} (it has {', '.join(features)}); map yours with "
                             "--image-key / --state-key / --action-key")
    if abs(ds.fps * action_dt - 1.0) > 0.02:
        raise ValueError(f"{folder}: {ds.fps} frames per second, but the model's chunks are one action_dt = "
                         f"{action_dt} s apart: convert at --fps {1 / action_dt:g}")
    frames, states, actions, episode, tasks = [], [], [], [], []
    for i in tqdm(range(len(ds)), desc=f"loading {folder.name}", unit="frame"):
        item = ds[i]
        frames.append((item[image_key].permute(1, 2, 0) * 255).round().to(torch.uint8))
        states.append(item[state_key].numpy())
        actions.append(item[action_key].numpy())
        episode.append(int(item["episode_index"]))
        tasks.append(item["task"])
    resized = [resize_images(torch.stack(frames[i:i + 256]), vision) for i in range(0, len(frames), 256)]
    images_out = (torch.cat(resized).permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    episode_arr, actions_arr = np.array(episode), np.stack(actions).astype(np.float32)
    return Samples(images_out, np.stack(states).astype(np.float32), chunks_of(actions_arr, episode_arr, horizon),
                   tasks, ["lerobot"] * len(tasks), episode_arr)
