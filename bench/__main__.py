"""Run every ``bench/*_bench.py`` module's ``main()`` in turn."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main() -> int:
    """Run all benchmarks found next to this file; non-zero if any failed."""
    failed = []
    for path in sorted(Path(__file__).parent.glob("*_bench.py")):
        module = importlib.import_module(f"bench.{path.stem}")
        print(f"## {path.stem}", flush=True)
        try:
            module.main()
        except Exception as exc:  # one broken bench must not hide the others' figures
            print(f"{path.stem} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(path.stem)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
