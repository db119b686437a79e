"""Time the raw-frame input path (decode_resized: a 640x480 camera buffer -> the model's 224x224 RGB) per encoding.

Usage: .venv/bin/python scripts/notebook/resize_timing.py [--baseline-src DIR] [--iters 500]

With --baseline-src (molevla_ros/src of a git worktree at an earlier commit) the same buffers go through that
code too, in a second interpreter, and the table puts both side by side. One thread, as the policy node runs it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "molevla_ros" / "src"
ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}

TIMER = """
import json, sys, time
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from molevla_ros.inputs.images import decode_resized
torch.set_num_threads(1)
out = {}
for enc, c in json.loads(sys.argv[2]).items():
    buf = np.random.default_rng(0).integers(0, 256, 480 * 640 * c, dtype=np.uint8).tobytes()
    for _ in range(50):  # warm-up: the first calls of a process (and of an idle CPU) are slower
        decode_resized(enc, 480, 640, 640 * c, buf, 224, 224)
    times = []
    for _ in range(int(sys.argv[3])):
        t0 = time.perf_counter()
        decode_resized(enc, 480, 640, 640 * c, buf, 224, 224)
        times.append(time.perf_counter() - t0)
    out[enc] = [float(np.percentile(times, q)) * 1e3 for q in (50, 99)]
print(json.dumps(out))
"""


def measure(src: Path, iters: int) -> dict[str, list[float]]:
    run = subprocess.run([sys.executable, "-c", TIMER, str(src), json.dumps(ENCODINGS), str(iters)],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-src", default="", help="molevla_ros/src of an earlier checkout to compare with")
    ap.add_argument("--iters", type=int, default=500, help="timed calls per encoding")
    args = ap.parse_args()
    now = measure(SRC, args.iters)
    base = measure(Path(args.baseline_src).resolve(), args.iters) if args.baseline_src else None
    compared = f" {'baseline p50 / p99 ms':>22} {'ratio p50':>9}" if base else ""
    print(f"{'encoding':<9} {'now p50 / p99 ms':>17}{compared}")
    for enc, (p50, p99) in now.items():
        line = f"{enc:<9} {p50:>8.3f} / {p99:<6.3f}"
        if base:
            b50, b99 = base[enc]
            line += f" {b50:>13.3f} / {b99:<6.3f} {b50 / p50:>9.2f}"
        print(line)


if __name__ == "__main__":
    main()
