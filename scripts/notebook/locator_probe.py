"""Does a policy read its goal locator? (docs/notebook.md, "Why push fails": "A goal locator".)

Usage: .venv/bin/python scripts/notebook/locator_probe.py EPISODE_FOLDER MODEL_DIR [MODEL_DIR ...]

Open loop on recorded episodes with the simulator's ground truth, full depth, the policy node's inference path
(scripts/notebook/push_diagnostics.py: agreement = cosine between the model's and the expert label's travel over
the first 4
action steps, where the expert moves). Each model runs with the points its locator finds, with the true points, with
the points its locator finds in another episode of the same family, and seeing another episode's frame. A policy
that reads the locator loses agreement with another episode's points; one that ignores it does not.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from molevla_ros.model.io import load_model
from molevla_ros.train.episodes import load_samples
from molevla_ros.train.geometry import normalise
from molevla_ros.train.locator import locate

sys.path.insert(0, str(Path(__file__).parent))
from push_diagnostics import _cosine, frames_of_other_episodes, travel  # noqa: E402

FAMILIES = ("touch", "push", "pick_place")


def main(folder: str, models: list[str]) -> None:
    torch.set_num_threads(1)
    print("| model | locator points | " + " | ".join(FAMILIES) + " |")
    print("|---|---|" + "---|" * len(FAMILIES))
    for path in models:
        model = load_model(path)
        if model.locator is None:
            raise SystemExit(f"{path} has no goal locator")
        data = load_samples(folder, model.cfg.vision, only_successful=False)
        if data.geometry is None:
            raise SystemExit(f"{folder} has no ground truth (record it with `molevla collect`)")
        fam = np.array(data.families)
        with torch.no_grad():
            own = torch.cat([locate(model, torch.from_numpy(data.images[i:i + 256]),
                                    model.tokenize(data.instructions[i:i + 256])) for i in range(0, len(data), 256)])
        rng = np.random.default_rng(0)
        other = own.clone()
        for i in range(len(data)):
            other[i] = own[rng.choice(np.flatnonzero((fam == fam[i]) & (data.episode != data.episode[i])))]
        true = normalise(torch.from_numpy(data.geometry[:, :2]))
        true = torch.where(torch.isnan(true), own, true)  # points a family does not define: the locator's own
        label = data.chunks[:, :4, :3].sum(1)
        moving = np.linalg.norm(label[:, :2], axis=1) >= 0.005
        located = model.locator.points
        for name, points, images in (("its own", None, data.images), ("true", true, data.images),
                                     ("another episode's", other, data.images),
                                     ("its own, another episode's frame", None, frames_of_other_episodes(data))):
            queue = {"points": points, "at": 0}

            def replaced(*inputs, queue=queue, located=located):
                out = located(*inputs)
                if queue["points"] is None:
                    return out
                n = out.shape[0]
                queue["at"] += n
                return queue["points"][queue["at"] - n:queue["at"]].to(out.dtype)

            model.locator.points = replaced
            agree = _cosine(travel(model, data, images), label)
            print(f"| {Path(path).name} | {name} | "
                  + " | ".join(f"{agree[(fam == f) & moving].mean():.2f}" for f in FAMILIES) + " |", flush=True)
        model.locator.points = located


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__.splitlines()[2])
    main(sys.argv[1], sys.argv[2:])
