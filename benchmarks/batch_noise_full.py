"""Chapter 4's margin experiment, larger: more seeds, more steps, more batch sizes.

    python benchmarks/batch_noise_full.py [--seeds 10] [--steps 600]

Prints one table (mean and 95% interval over seeds of the median training margin, in data
radii, and of test accuracy; then BN - plain and noise - plain, paired by seed) and writes it to
experiments/batch_noise_full.json, which the chapter shows if it exists. Takes tens of minutes
on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import torch

import bnlib
from bnlib import noise as nz
from bnlib.geometry import mean_interval


def _interval(values) -> list | None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return [round(x, 4) for x in mean_interval(v)] if len(v) >= 2 else None


def rows_of(t: dict, task: str) -> list[dict]:
    rows = []
    sizes = sorted(np.unique(t["batch_size"]), key=lambda b: b if b else 10**9)
    for bs in sizes:
        plain = (t["batch_size"] == bs) & (t["arm"] == "plain")
        for arm in nz.ARMS:
            sel = (t["batch_size"] == bs) & (t["arm"] == arm)
            if sel.sum() < 2:
                continue
            row = {"task": task, "batch": "full" if bs == 0 else int(bs), "arm": arm}
            # a network that predicts one class in the whole box has no boundary: margin +-inf
            row["no_boundary"] = int(np.sum(~np.isfinite(t["margin"][sel])))
            for key in ("margin", "test_accuracy"):
                row[key] = _interval(t[key][sel])
                if arm != "plain" and plain.sum() == sel.sum():
                    row[key + "_vs_plain"] = _interval(t[key][sel] - t[key][plain])
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = range(args.seeds)
    X, y = bnlib.data.moons(256, noise=0.2, seed=0)
    Xt, yt = bnlib.data.moons(2000, noise=0.2, seed=1)
    rows = rows_of(nz.margin_experiment(X, y, Xt, yt, widths=[2, 32, 32], arms=nz.ARMS,
                                        batch_sizes=[2, 4, 8, 16, 64, None], seeds=seeds,
                                        steps=args.steps), "moons, exact margin")
    for N in (4, 16):
        t = nz.margin_experiment(X, y, Xt, yt, widths=[2, 32, 32], arms=("plain", "noise"),
                                 batch_sizes=[None], seeds=seeds, steps=args.steps, noise_batch_size=N)
        rows += rows_of(t, f"moons, full batch, noise of N = {N}")
    Xd, Xdt, yd, ydt = bnlib.data.digits(seed=0)
    rows += rows_of(nz.margin_experiment(Xd, yd, Xdt, ydt, widths=[64, 64, 64], arms=nz.ARMS,
                                         batch_sizes=[4, 8, 32, 128, None], seeds=seeds,
                                         steps=args.steps, margin="local"), "digits, local margin")
    setup = (f"{args.seeds} seeds, {args.steps} steps of Adam (lr 0.003) for every batch size; "
             "margin: median signed margin over training points / data RMS radius; "
             "values: mean [95% interval] over seeds with a finite margin; *_vs_plain: paired by seed; "
             "no_boundary: networks with no decision boundary in the box (excluded)")
    print(setup)
    for r in rows:
        print(r)
    out = pathlib.Path(__file__).resolve().parent.parent / "experiments" / "batch_noise_full.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"setup": setup, "rows": rows}, indent=1))
    print("wrote", out)


if __name__ == "__main__":
    main()
