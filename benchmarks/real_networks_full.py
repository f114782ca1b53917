"""Chapter 5's measurements over seeds: training against evaluation mode, learned gamma and beta, other norms.

    python benchmarks/real_networks_full.py [--seeds 10] [--out PATH]

Four tables go to bnlib/experiments/real_networks_full.json (package data, loaded by
`bnlib.experiments.saved_run`), which chapter 5 loads, compares (paired by seed), draws and checks; every network is seeded, so a rerun gives the same file.

* ``modes``: a BN network on the spirals trained for the same number of steps at each batch size
  (:func:`bnlib.experiments.ch5_real.mode_experiment`): test accuracy with the statistics of one
  batch (training mode), running statistics of several momenta, precise statistics, and how far the
  decision boundary moves from the precise one.
* ``units``: after training, every hidden unit's hyperplane measured from the data's centroid in
  data-spread units (:func:`~bnlib.experiments.ch5_real.unit_geometry`), for the plain network with
  He weights and for BN (running and precise statistics), on the spirals and on the digits.
* ``distances`` and ``accuracy``: the median distance from test points to the nearest boundary of
  any unit and to the decision boundary along rays (:func:`~bnlib.experiments.ch5_real.ray_distances`),
  and the test accuracy, for every arm (plain with He weights, BN, LayerNorm, GroupNorm).
* ``conv``: the book's ConvNet on the digit images without BN (torch's initialization and He
  initialization of the convolutions) and with BN, trained with Adam
  (:func:`~bnlib.experiments.ch5_real.conv_experiment`): test accuracy after the first and the last
  epoch, BN with running and with precise statistics.

Takes about two and a half minutes on one core of an idle machine (one thread; several minutes on a busy one).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np
import pandas as pd
import torch

import bnlib
from bnlib.experiments import written_by
from bnlib.experiments.ch5_real import ARMS, conv_experiment, mode_experiment, ray_distances, train_arms, unit_geometry

OUT = pathlib.Path(__file__).resolve().parent.parent / "bnlib" / "experiments" / "real_networks_full.json"

SPIRALS = dict(n=300, turns=1.0, noise=0.03)
"""The 2-D task: two spiral arms around the origin, training and test sets drawn with seeds 0 and 1."""

SETUP = {
    "modes": dict(widths=[2, 16, 16, 16], box=[-1.3, 1.3, -1.3, 1.3], batch_sizes=[4, 16, 64],
                  momenta=[0.01, 0.1, 0.5, None], steps=300, lr=1e-2),
    "spirals": dict(widths=[2, 16, 16, 16], n_classes=1, epochs=20, batch_size=32, lr=1e-2, groups=4),
    "digits": dict(widths=[64, 64, 64], n_classes=10, epochs=5, batch_size=32, lr=1e-2, groups=4),
    "distances": dict(points=100, directions=16, n_steps=48, max_radii=2.0),
    "conv": dict(epochs=5, batch_size=32, lr=1e-2, record=[1, 5]),
}


def load(task: str):
    if task == "spirals":
        n = SPIRALS["n"]
        kw = {k: v for k, v in SPIRALS.items() if k != "n"}
        X, y = bnlib.data.spirals(n, seed=0, **kw)
        Xt, yt = bnlib.data.spirals(n, seed=1, **kw)
        return X, y, Xt, yt
    X, Xt, y, yt = bnlib.data.digits(seed=0)
    return X, y, Xt, yt


def rounded(value):
    """Floats to 6 significant digits (the measurements' own precision is far coarser), recursively."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    start = time.time()
    X, y, Xt, yt = load("spirals")
    modes, _ = mode_experiment(X, y, Xt, yt, seeds=seeds, at=(), **SETUP["modes"])
    units, distances, accuracy = [], [], []
    d = SETUP["distances"]
    for task in ("spirals", "digits"):
        X, y, Xt, yt = load(task)
        models, acc = train_arms(X, y, Xt, yt, arms=ARMS, seeds=seeds, **SETUP[task])
        accuracy.append(acc.assign(task=task))
        for (arm, seed), net in models.items():
            if arm in ("plain_he", "bn"):
                for statistics in (("running", "precise") if arm == "bn" else ("running",)):
                    name = "bn_precise" if statistics == "precise" else arm
                    units.append(unit_geometry(net, X, statistics=statistics).assign(task=task, arm=name, seed=seed))
        points = Xt[np.random.default_rng(0).choice(len(Xt), d["points"], replace=False)]
        radius = bnlib.geometry.rms_radius(X)
        for boundary in ("units", "decision"):
            t = ray_distances(models, X, points, max_distance=d["max_radii"] * radius, directions=d["directions"],
                              n_steps=d["n_steps"], boundary=boundary)
            distances.append(t.assign(task=task, boundary=boundary))
    X, y, Xt, yt = load("digits")
    conv = conv_experiment(X, y, Xt, yt, seeds=seeds, **SETUP["conv"])
    out = {
        "setup": {"seeds": args.seeds, "data": {"spirals": SPIRALS, "digits": "bnlib.data.digits(seed=0)"}, **SETUP,
                  **written_by()},
        "modes": modes.astype({"momentum": str}).to_dict(orient="records"),
        "units": pd.concat(units, ignore_index=True).to_dict(orient="records"),
        "distances": pd.concat(distances, ignore_index=True).to_dict(orient="records"),
        "accuracy": pd.concat(accuracy, ignore_index=True).to_dict(orient="records"),
        "conv": conv.to_dict(orient="records"),
    }
    args.out.write_text(json.dumps(rounded(out), separators=(",", ":")) + "\n")  # compact: one row per unit
    print(f"wrote {args.out} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
