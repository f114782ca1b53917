"""Chapter 4's margin experiment, larger: more seeds, more steps, more data, more batch sizes.

    python benchmarks/batch_noise_full.py [--seeds 10] [--steps 600] [--jobs 2] [--out PATH]

Trains every arm (plain, BN, dropout, BN's noise without BN) on the two moons (exact margin) and
on the digits (local-linear margin) at every batch size, for the same number of steps, and the
plain network against BN's noise of a batch of 4 or 16 in full-batch training; every network's
row (one per task, arm, batch size and seed; a BN network measured with its running statistics
and with precise statistics) goes to bnlib/experiments/batch_noise_full.json (package data, loaded by
`bnlib.experiments.saved_run`), which chapter 4 loads,
compares (paired by seed), draws and checks. Prints the arms' differences from the plain network.
Takes about 13 minutes of CPU time (--jobs splits the work over processes by task and batch
size; every network is seeded, so the result does not depend on the split).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import torch

import bnlib
from bnlib.experiments import written_by
from bnlib.experiments.ch4_noise import ARMS, holm_verdicts, margin_experiment, precise_arms, versus
from bnlib.stats import interval_text, table

OUT = pathlib.Path(__file__).resolve().parent.parent / "bnlib" / "experiments" / "batch_noise_full.json"

TASKS = {
    "moons": dict(data="moons", widths=[2, 32, 32], arms=ARMS, batch_sizes=[2, 4, 8, 16, 64, None],
                  margin="exact", noise_batch_size=None),
    "moons, noise of N = 4 at full batch": dict(data="moons", widths=[2, 32, 32], arms=("plain", "noise"),
                                                batch_sizes=[None], margin="exact", noise_batch_size=4),
    "moons, noise of N = 16 at full batch": dict(data="moons", widths=[2, 32, 32], arms=("plain", "noise"),
                                                 batch_sizes=[None], margin="exact", noise_batch_size=16),
    "digits": dict(data="digits", widths=[64, 64, 64], arms=ARMS, batch_sizes=[4, 8, 32, 128, None],
                   margin="local", noise_batch_size=None),
}
"""Every task of the run: its data, network widths, arms, batch sizes (None: full batch), margin."""

DATA = {
    "moons": "256 training and 2000 test points of bnlib.data.moons (noise 0.2, seeds 0 and 1)",
    "digits": "bnlib.data.digits(seed=0): 1347 training and 450 test images, 64 pixels, 10 classes",
}


def load_data(name: str):
    """``X, y, X_test, y_test`` of ``"moons"`` or ``"digits"``."""
    if name == "moons":
        X, y = bnlib.data.moons(256, noise=0.2, seed=0)
        Xt, yt = bnlib.data.moons(2000, noise=0.2, seed=1)
        return X, y, Xt, yt
    X, Xt, y, yt = bnlib.data.digits(seed=0)
    return X, y, Xt, yt


def run_job(task: str, batch_size: int | None, seeds: list[int], steps: int) -> pd.DataFrame:
    """One task at one batch size: every arm and seed (:func:`margin_experiment`), as a frame."""
    torch.set_num_threads(1)
    spec = TASKS[task]
    X, y, Xt, yt = load_data(spec["data"])
    t = margin_experiment(X, y, Xt, yt, widths=spec["widths"], arms=spec["arms"], batch_sizes=[batch_size],
                          seeds=seeds, steps=steps, margin=spec["margin"],
                          noise_batch_size=spec["noise_batch_size"], progress=False)
    frame = pd.DataFrame(t)
    frame.insert(0, "task", task)
    return frame


def as_json(frame: pd.DataFrame) -> dict:
    """The runs as lists per column; NaN (no decision boundary, or no BN for _precise) as null."""
    out = {}
    for key in frame.columns:
        col = frame[key]
        if col.dtype.kind == "f":
            out[key] = [float(v) if np.isfinite(v) else None for v in col]
        elif col.dtype.kind in "iub":
            out[key] = [v.item() for v in col.to_numpy()]
        else:
            out[key] = [str(v) for v in col]
    return out


def load(path: pathlib.Path = OUT) -> tuple[dict, pd.DataFrame]:
    """The saved run: its setup (a dict) and its runs (one row per network; null read as NaN)."""
    saved = json.loads(pathlib.Path(path).read_text())
    return saved["setup"], pd.DataFrame(saved["runs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per arm and batch size (default 10)")
    parser.add_argument("--steps", type=int, default=600, help="training steps of every network (default 600)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out", type=pathlib.Path, default=OUT,
                        help=f"where to write the JSON (default {OUT.relative_to(OUT.parent.parent)}, "
                             "which chapter 4 loads)")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    jobs = [(task, bs) for task, spec in TASKS.items() for bs in spec["batch_sizes"]]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        frames = list(pool.map(run_job, *zip(*jobs), [seeds] * len(jobs), [args.steps] * len(jobs)))
    runs = pd.concat(frames, ignore_index=True)
    runs["no_boundary"] = np.isnan(runs["margin"].to_numpy(dtype=float))  # margin_experiment: NaN
    setup = {
        "seeds": args.seeds,
        "steps": args.steps,
        "optimizer": "adam",
        "lr": 3e-3,
        "dropout": 0.1,
        "tasks": {task: {k: (["full" if b is None else b for b in v] if k == "batch_sizes" else
                             list(v) if isinstance(v, (list, tuple)) else v)
                         for k, v in spec.items()} | {"data_description": DATA[spec["data"]]}
                  for task, spec in TASKS.items()},
        "columns": ("one row per network: task, arm, batch_size (0: full batch), seed; steps and epochs trained; "
                    "margin (median signed margin over the training points / the data's RMS radius), "
                    "train_loss, train_accuracy, test_accuracy, in evaluation mode: running statistics "
                    "for BN, and the same with _precise: statistics of the whole training set "
                    "(bnlib.nets.precise_batchnorm; null without BN); no_boundary: a network with no "
                    "decision boundary near the data (margin null)"),
        "command": f"python benchmarks/batch_noise_full.py --seeds {args.seeds} --steps {args.steps}",
        "wall_minutes": round((time.perf_counter() - start) / 60, 1),
        "jobs": args.jobs,
        **written_by(),
    }
    out = args.out.resolve()
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"setup": setup, "runs": as_json(runs)}, indent=1) + "\n")
    # what the run shows: every arm minus the plain network, paired by seed (Holm over all of them); at
    # full batch the noise arm of "moons" and "digits" is the plain network itself, not a comparison
    diffs = versus(precise_arms(runs), ["bn", "bn_precise", "dropout", "noise"], by=["task", "batch_size"])
    same = (diffs["arm"] == "noise") & (diffs["batch_size"] == 0) & diffs["task"].isin(["moons", "digits"])
    diffs = holm_verdicts(diffs[~same])
    print(table({"task": diffs["task"], "batch": [str(b) if b else "full" for b in diffs["batch_size"]],
                 "arm - plain": diffs["arm"], "value": diffs["value"],
                 "difference": [interval_text(m, lo, hi, 3, signed=True)
                                for m, lo, hi in diffs[["mean", "lo", "hi"]].to_numpy()],
                 "Holm p": diffs["p_holm"], "verdict": diffs["verdict"]},
                caption=f"{args.seeds} seeds, {args.steps} steps: arm - plain, mean [95 % interval] over seeds; "
                        f"Holm over all {len(diffs)} differences"))
    print("wrote", out)


if __name__ == "__main__":
    main()
