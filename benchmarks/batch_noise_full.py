"""Chapter 4's margin experiment, larger: more seeds, more steps, more batch sizes.

    python benchmarks/batch_noise_full.py [--seeds 10] [--steps 600] [--out PATH]

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
import pandas as pd
import torch

import bnlib
from bnlib.experiments.ch4_noise import ARMS, margin_experiment
from bnlib.stats import interval_text, paired_difference, summarize, table

OUT = pathlib.Path(__file__).resolve().parent.parent / "experiments" / "batch_noise_full.json"
VALUES = ("margin", "test_accuracy")


def _interval(summary: pd.DataFrame, key) -> list | None:
    """``[mean, lo, hi]`` (4 decimals) of one group of a bnlib.stats summary; None under 2 values."""
    if key not in summary.index or summary.loc[key, "n"] < 2:
        return None
    return [round(float(summary.loc[key, k]), 4) for k in ("mean", "lo", "hi")]


def rows_of(t: dict, task: str) -> list[dict]:
    """The saved rows of one run of the experiment: one per batch size (full batch last) and arm.

    ``margin`` and ``test_accuracy``: mean [95% interval] over the seeds where the value is
    finite (:func:`bnlib.stats.summarize`); ``*_vs_plain``: the same for the arm minus ``plain``,
    paired by seed (:func:`bnlib.stats.paired_difference`); ``no_boundary``: networks that
    predict one class in the whole box (margin +-inf), left out of the margin's intervals.
    """
    frame = pd.DataFrame(t)
    summary, versus = {}, {}
    for key in VALUES:
        finite = frame[np.isfinite(frame[key])]
        summary[key] = summarize(finite, key, by=["batch_size", "arm"]).set_index(["batch_size", "arm"])
        runs = {arm: finite[finite["arm"] == arm][["batch_size", "seed"]] for arm in set(finite["arm"])}
        for arm in set(runs) - {"plain"}:
            if "plain" in runs and len(runs[arm].merge(runs["plain"])):  # some seed has both arms
                versus[key, arm] = paired_difference(finite, key, arm, "plain", by=["batch_size"]).set_index("batch_size")
    rows = []
    for bs in sorted(frame["batch_size"].unique(), key=lambda b: b if b else 10**9):
        runs = frame[frame["batch_size"] == bs]
        n_plain = int((runs["arm"] == "plain").sum())
        for arm in ARMS:
            sel = runs[runs["arm"] == arm]
            if len(sel) < 2:
                continue
            row = {"task": task, "batch": "full" if bs == 0 else int(bs), "arm": arm}
            # a network that predicts one class in the whole box has no boundary: margin +-inf
            row["no_boundary"] = int(np.sum(~np.isfinite(sel["margin"])))
            for key in VALUES:
                row[key] = _interval(summary[key], (bs, arm))
                if arm != "plain" and n_plain == len(sel):
                    row[key + "_vs_plain"] = (_interval(versus[key, arm], bs) if (key, arm) in versus
                                              else None)
            rows.append(row)
    return rows


def rows_table(rows: list[dict], caption: str | None = None):
    """The saved rows as a :class:`bnlib.stats.Table` (mean [95% interval]; differences signed)."""
    text = lambda v, signed=False: "n/a" if v is None else interval_text(*v, 3, signed=signed)
    return table({
        "task": [r["task"] for r in rows],
        "batch": [str(r["batch"]) for r in rows],
        "arm": [r["arm"] for r in rows],
        "margin": [text(r["margin"]) for r in rows],
        "test accuracy": [text(r["test_accuracy"]) for r in rows],
        "margin vs plain": [text(r.get("margin_vs_plain"), True) if "margin_vs_plain" in r else "" for r in rows],
        "accuracy vs plain": [text(r.get("test_accuracy_vs_plain"), True) if "test_accuracy_vs_plain" in r else ""
                              for r in rows],
        "no boundary": [r["no_boundary"] for r in rows],
    }, caption=caption)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per arm and batch size (default 10)")
    parser.add_argument("--steps", type=int, default=600, help="training steps of every network (default 600)")
    parser.add_argument("--out", type=pathlib.Path, default=OUT,
                        help=f"where to write the JSON (default {OUT.relative_to(OUT.parent.parent)}, "
                             "which chapter 4 loads)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = range(args.seeds)
    X, y = bnlib.data.moons(256, noise=0.2, seed=0)
    Xt, yt = bnlib.data.moons(2000, noise=0.2, seed=1)
    rows = rows_of(margin_experiment(X, y, Xt, yt, widths=[2, 32, 32], arms=ARMS,
                                     batch_sizes=[2, 4, 8, 16, 64, None], seeds=seeds,
                                     steps=args.steps), "moons, exact margin")
    for N in (4, 16):
        t = margin_experiment(X, y, Xt, yt, widths=[2, 32, 32], arms=("plain", "noise"),
                              batch_sizes=[None], seeds=seeds, steps=args.steps, noise_batch_size=N)
        rows += rows_of(t, f"moons, full batch, noise of N = {N}")
    Xd, Xdt, yd, ydt = bnlib.data.digits(seed=0)
    rows += rows_of(margin_experiment(Xd, yd, Xdt, ydt, widths=[64, 64, 64], arms=ARMS,
                                      batch_sizes=[4, 8, 32, 128, None], seeds=seeds,
                                      steps=args.steps, margin="local"), "digits, local margin")
    setup = (f"{args.seeds} seeds, {args.steps} steps of Adam (lr 0.003) for every batch size; "
             "margin: median signed margin over training points / data RMS radius; "
             "values: mean [95% interval] over seeds with a finite margin; *_vs_plain: paired by seed; "
             "no_boundary: networks with no decision boundary in the box (excluded)")
    print(rows_table(rows, caption=setup))
    out = args.out.resolve()
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"setup": setup, "rows": rows}, indent=1))
    print("wrote", out)


if __name__ == "__main__":
    main()
