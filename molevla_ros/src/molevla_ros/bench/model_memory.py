"""Peak host memory of importing a CogACT checkpoint and of loading the imported model for serving.

The checkpoint is synthetic but full-width where memory is spent: DINOv2 ViT-L/14 and SigLIP SO400M/14 towers at
their real sizes, the 2176 -> 8704 -> 4096 -> 4096 projector, `layers` Llama-2-7B-sized decoder layers (hidden 4096,
MLP 11008, 32 heads, vocabulary 32064) and a DiT-B head: CogACT-Base minus 32 - `layers` decoder layers. Each step
runs in a fresh process; its cost is the growth of its resident memory (peak RSS, file-backed pages included) over
what the process held before the step (Python, torch, timm, transformers). "before" rows repeat the loading code
this replaced (a random-initialised float32 model, the file through safetensors' load_file, then a cast), so the
ratios compare side by side on the same files in one run.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from molevla_ros.bench.report import header
from molevla_ros.config_cli import option

GB = 1e9

STEP = r"""
import json, resource, sys, time
from pathlib import Path
import torch, timm, transformers  # noqa: F401  (loaded before the baseline, as any serving process has them)
from molevla_ros.model import io
from molevla_ros.model.import_cogact import ImportOptions, import_cogact

def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) * 1024

kind, src, out, dtype = sys.argv[1:5]
dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
base, t0 = rss(), time.perf_counter()
if kind == "import":
    import_cogact(ImportOptions(src, str(Path(src).parent / "tokenizer"), out, dtype=dtype, llm_heads=32))
elif kind == "load":
    model = io.load_model(Path(src), dtype=dt)
else:  # "before": the loading code this benchmark's issue replaced
    from safetensors.torch import load_file
    from molevla_ros.model.config import MoLeConfig
    from molevla_ros.model.mole_vla import MoLeVLA
    model = MoLeVLA(MoLeConfig.load(Path(src) / "config.json"))
    model.load_state_dict(load_file(str(Path(src) / "model.safetensors")))
    model = model.to(dt)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak_growth": peak - base, "seconds": time.perf_counter() - t0}))
"""


@dataclass
class MemoryOptions:
    layers: int = option(2, "Llama-2-7B-sized decoder layers in the synthetic checkpoint (CogACT-Base has 32)")
    work: str = option("", "folder for the checkpoint and the imported models (about 24 GB for 2 layers; default: a "
                       "temporary folder, removed afterwards)")
    out: str = option("docs/results/model_memory", "folder for the table (JSON and Markdown)")


def write_checkpoint(folder: Path, layers: int) -> Path:
    """The synthetic full-width release (in its own process: building it takes twice its size)."""
    code = ("import sys; from pathlib import Path; from molevla_ros.testing.synthetic_cogact import write_release, "
            "write_tokenizer; f = Path(sys.argv[1]); write_tokenizer(f / 'tokenizer'); "
            "write_release(f / 'release', vocab=32064, hidden=4096, intermediate=11008, layers=int(sys.argv[2]), "
            "heads=32, kv_heads=32, towers=({}, {}), dit=(768, 12))")
    subprocess.run([sys.executable, "-c", code, str(folder), str(layers)], check=True)
    return next((folder / "release" / "checkpoints").glob("*.pt"))


def step(kind: str, src: Path, out: Path, dtype: str) -> dict:
    res = subprocess.run([sys.executable, "-c", STEP, kind, str(src), str(out), dtype], check=True,
                         capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def weight_bytes(model_dir: Path, dtype: str) -> int:
    """Bytes of the model's tensors in the serving dtype (io.FP32_PARTS in float32)."""
    import torch

    from molevla_ros.model.io import serving_dtype
    from molevla_ros.model.safetensors_io import TORCH, read_header

    serving = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    total = 0
    for name, e in read_header(model_dir / "model.safetensors")[0].items():
        t = torch.empty(0, dtype=serving_dtype(name, TORCH[e["dtype"]], serving))
        n = 1
        for s in e["shape"]:
            n *= s
        total += n * t.element_size()
    return total


def run(o: MemoryOptions) -> int:
    from tqdm import tqdm

    work = Path(o.work) if o.work else Path(tempfile.mkdtemp(prefix="molevla_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"writing a synthetic full-width checkpoint with {o.layers} Llama-2-7B layers under {work} ...")
        pt = write_checkpoint(work, o.layers)
        src_bytes = pt.stat().st_size
        rows = []
        plan = [("import", "fp32"), ("import", "bf16"), ("load", "fp32"), ("before", "fp32"), ("load", "bf16"),
                ("before", "bf16")]
        for kind, dtype in tqdm(plan, desc="steps", unit="step"):
            folder = work / f"model_{dtype}"
            if kind == "import":
                r = step(kind, pt.parents[1], folder, dtype)
                basis, what = src_bytes, "checkpoint file"
                label = f"import -> {dtype} folder"
            else:
                r = step(kind, work / "model_fp32", folder, dtype)
                basis, what = weight_bytes(work / "model_fp32", dtype), f"{dtype} weights"
                label = f"{'load' if kind == 'load' else 'before: init + load_file + cast'} for {dtype} serving"
            rows.append({"step": label, "basis": what, "basis_gb": basis / GB, "peak_growth_gb": r["peak_growth"] / GB,
                         "ratio": r["peak_growth"] / basis, "seconds": r["seconds"]})
    finally:
        if not o.work:
            shutil.rmtree(work, ignore_errors=True)
    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_memory.json").write_text(json.dumps(rows, indent=2))
    lines = [header("molevla bench-model-memory", o),
             f"Synthetic CogACT checkpoint: full-size towers, projector and DiT-B, {o.layers} Llama-2-7B layers "
             f"({src_bytes / GB:.2f} GB float32). Goals: import <= 1.5x the checkpoint file, serving load <= 1.2x "
             "the serving-dtype weights.\n",
             "| step | relative to | size (GB) | peak RSS growth (GB) | ratio | time (s) |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['step']} | {r['basis']} | {r['basis_gb']:.2f} | {r['peak_growth_gb']:.2f} | {r['ratio']:.2f} | "
              f"{r['seconds']:.0f} |" for r in rows]
    (out / "model_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
