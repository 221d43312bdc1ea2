"""Writes golden fixtures in the plain-text form tests/support/golden.hpp reads.

A fixture file is a sequence of named matrices:
    name rows cols
    v00 v01 ... (row-major, one line per row, 17 significant digits)
Vectors are written as [1, n] and scalars as [1, 1]. Names are unique per file.
"""
import torch


def write_fixture(path, named):
    """named: list of (name, tensor-like) pairs, written in order."""
    with open(path, "w") as out:
        for name, value in named:
            t = torch.as_tensor(value).detach().to(torch.float64)
            if t.dim() == 0:
                t = t.reshape(1, 1)
            elif t.dim() == 1:
                t = t.reshape(1, -1)
            elif t.dim() > 2:
                t = t.reshape(t.shape[0], -1)
            rows, cols = t.shape
            out.write(f"{name} {rows} {cols}\n")
            for r in range(rows):
                out.write(" ".join(f"{v:.17g}" for v in t[r].tolist()) + "\n")
