#!/usr/bin/env python3
"""Regenerates every golden fixture under tests/fixtures/golden/ from PyTorch.

Needs Debian's python3-torch (CI does not run this; the fixtures are committed):
    apt-get install python3-torch libopenblas0-pthread
    /usr/bin/python3 tests/golden/make_fixtures.py   # Debian's python3 (has torch)
Each golden_*.py module beside this file writes its own fixtures.
"""
import importlib
import os
import pathlib
import sys

import torch

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent / "fixtures" / "golden"


def main():
    torch.set_default_dtype(torch.float64)
    OUT.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(HERE))
    for module in sorted(p.stem for p in HERE.glob("golden_*.py")):
        print(f"{module} -> {OUT}")
        importlib.import_module(module).write(OUT)


if __name__ == "__main__":
    main()
