"""Expensive session fixtures built once per run, even when pytest-xdist runs several workers.

Each xdist worker is its own session, so a session fixture (a trained model, a template
MLflow store) would be built once per worker. The first worker to ask builds it under a
file lock in the run's shared temporary folder; the others wait and read what it left.
The value must pickle, and whatever it points at must only be read (or written under
unique names) by the tests that use it.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], T]) -> T:
    """``build(folder)`` once per run; every worker gets its value (unpickled)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build(factory.mktemp(name))
    # Workers' temporary folders are siblings (popen-gw0, popen-gw1) in the run's folder.
    root = factory.getbasetemp().parent / f"once-{name}"
    root.mkdir(exist_ok=True)
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        value_file = root / "value.pickle"
        if value_file.exists():
            value: T = pickle.loads(value_file.read_bytes())
            return value
        folder = root / "built"
        # A worker whose build failed leaves no value: this one builds again from scratch.
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        value = build(folder)
        value_file.write_bytes(pickle.dumps(value))
        return value
