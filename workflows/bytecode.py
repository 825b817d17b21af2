"""Bytecode for the workflow modules, written once per process that runs workflow code.

The sandbox loads a workflow's module afresh for every run it starts or replays. Without
a current .pyc (PYTHONDONTWRITEBYTECODE, a fresh checkout, an edited file) each load
compiled workflows/parcel.py again: 7 % of the worker's CPU under load, as much of an
audit replay (bench/PROFILE.md).
"""

from __future__ import annotations

import compileall
import contextlib
from pathlib import Path

PACKAGES = (Path(__file__).parent, Path(__file__).parent / "legacy")


def compile_modules() -> None:
    for directory in PACKAGES:
        with contextlib.suppress(OSError):  # a read-only image: slower, not wrong
            compileall.compile_dir(directory, maxlevels=0, quiet=2)
