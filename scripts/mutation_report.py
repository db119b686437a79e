"""Summarise a mutmut run (run from molevla_ros/, after `mutmut run`): score, per file, surviving mutants with their
diffs, and which survivors are equivalent (docs/results/mutation/equivalent.yaml: mutant name -> why no test can
tell it from the original). Writes docs/results/mutation/report.md."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

from molevla_ros.bench.report import header

OUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "mutation"
MUTMUT = [sys.executable, "-m", "mutmut"]


def mutmut(*args: str) -> str:
    return subprocess.run([*MUTMUT, *args], capture_output=True, text=True, check=True).stdout


def main() -> None:
    results = [line.strip().rsplit(": ", 1) for line in mutmut("results", "--all", "true").splitlines()
               if ": " in line]
    # A mutant that crashes the test run (mutmut: "segfault") is detected as surely as one that fails a test.
    status = {name: "killed" if state == "segfault" else state for name, state in results}
    equivalent = yaml.safe_load((OUT / "equivalent.yaml").read_text()) or {} if (OUT / "equivalent.yaml").exists() \
        else {}
    total = len(status)
    killed = sum(s == "killed" for s in status.values())
    survivors = sorted(n for n, s in status.items() if s != "killed")
    equiv = [n for n in survivors if n in equivalent]
    stale = sorted(set(equivalent) - set(status))  # listed but no longer generated: the list needs updating
    files = Counter(n.rsplit(".", 1)[0] for n in status)  # molevla_ros.control.chunk_executor.x_fn__mutmut_3
    killed_by_file = Counter(n.rsplit(".", 1)[0] for n, s in status.items() if s == "killed")
    lines = [header("bash scripts/mutation_test.sh"),
             f"Mutants: {total}; killed {killed}; survived {len(survivors)}, of which equivalent {len(equiv)}.",
             f"Score: killed / total = {killed / max(total, 1):.1%}; killed / (total - equivalent) = "
             f"{killed / max(total - len(equiv), 1):.1%}.", "",
             "| module | mutants | killed |", "|---|---|---|"]
    lines += [f"| {f} | {n} | {killed_by_file[f]} |" for f, n in sorted(files.items())]
    lines += ["", "## Equivalent mutants (no input can tell them from the original)", ""]
    lines += [f"- `{n}`: {equivalent[n]}" for n in equiv] or ["none"]
    if stale:
        lines += ["", "Listed as equivalent but not generated any more: " + ", ".join(f"`{n}`" for n in stale)]
    lines += ["", "## Surviving mutants (not equivalent)", ""]
    for n in survivors:
        if n not in equivalent:
            lines += [f"### `{n}` ({status[n]})", "", "```diff", mutmut("show", n).strip(), "```", ""]
    if len(equiv) == len(survivors):
        lines.append("none")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.md").write_text("\n".join(lines) + "\n")
    (OUT / "summary.json").write_text(json.dumps({"total": total, "killed": killed, "survived": len(survivors),
                                                  "equivalent": len(equiv)}, indent=2))
    print("\n".join(lines[:4 + len(files) + 3]))


if __name__ == "__main__":
    main()
