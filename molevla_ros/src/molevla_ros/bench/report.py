"""The header every benchmark writes above its table: what ran, on which commit and machine, when."""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def commit() -> str:
    """The checkout's commit (with "+changes" when the tree differs from it), or "unknown" outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+changes" if dirty else "")


def machine() -> str:
    """CPU model, cores and memory of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB"


def header(command: str, options: object | None = None) -> str:
    """Markdown lines naming the command (with its options), commit, machine, Python and date."""
    opts = ""
    if options is not None and dataclasses.is_dataclass(options):
        opts = " " + " ".join(f"--{f.name.replace('_', '-')} {_text(getattr(options, f.name))}"
                              for f in dataclasses.fields(options))
    return (f"Command: `{command}{opts}`  \n"
            f"Commit: {commit()}; machine: {machine()}; Python {sys.version.split()[0]}; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n")


def _text(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
