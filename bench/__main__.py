"""Run every ``bench/*_bench.py`` module, each in a process of its own.

Separate processes keep one benchmark's MLflow URIs (which MLflow writes into
``os.environ``) and imports from colouring the next one's figures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Run all benchmarks found next to this file; non-zero if any failed."""
    failed = []
    for path in sorted(Path(__file__).parent.glob("*_bench.py")):
        print(f"## {path.stem}", flush=True)
        done = subprocess.run([sys.executable, "-m", f"bench.{path.stem}"], cwd=ROOT, check=False)
        if done.returncode != 0:  # one broken bench must not hide the others' figures
            print(f"{path.stem} failed with exit code {done.returncode}", file=sys.stderr)
            failed.append(path.stem)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
