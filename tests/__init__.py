"""BoltIT's tests (tests/README.md)."""

import os

# Rich's consoles (boltit.core.console) fix their width from COLUMNS when they are created, at
# import. pytest-xdist's workers start with COLUMNS=80, which would then win over the width a
# CLI test sets with monkeypatch; without it, the consoles read COLUMNS at each print.
os.environ.pop("COLUMNS", None)
