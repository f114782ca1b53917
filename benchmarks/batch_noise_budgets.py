"""Chapter 4's training runs, saved: the networks whose numbers the chapter quotes on every CPU.

    python benchmarks/batch_noise_budgets.py [--out PATH]

Float32 training drifts between CPUs' kernels (execution.md): re-run on another processor, the margins
of chapter 4's networks move by up to a few hundredths (benchmarks/isa_spread.py, probe ch4_budgets),
enough to change the third digit the text prints. So the chapter quotes this saved run of exactly its
calls, and trains seed 0 again live, checked within the measured drift:

- ``budgets``: BN and plain networks on the two moons (128 points) at batch sizes 4, 16 and full,
  trained at equal steps (300), equal epochs (20) and to a matched training loss (0.3), seeds 0-9
  (:func:`bnlib.experiments.ch4_noise.margin_experiment`): one row per network;
- ``jitter_network``: the weights of the BN network whose hyperplane jitter the chapter measures
  (seed 0, 300 steps of batches of 16).

Writes bnlib/experiments/batch_noise_budgets.json with the torch version and CPU kernels that wrote
it. About two minutes on one core.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import pandas as pd
import torch

import bnlib
from bnlib.experiments import json_columns, written_by
from bnlib.experiments.ch4_noise import build_network, margin_experiment
from bnlib.train import fit

OUT = pathlib.Path(__file__).resolve().parent.parent / "bnlib" / "experiments" / "batch_noise_budgets.json"
BUDGETS = {"equal steps": dict(budget="steps", steps=300), "equal epochs": dict(budget="epochs", epochs=20),
           "matched loss": dict(budget="loss", epochs=128, target_loss=0.3)}
RUN = dict(widths=[2, 16, 16], arms=["plain", "bn"], batch_sizes=[4, 16, None], seeds=list(range(10)))
JITTER = dict(widths=[2, 16, 16], seed=0, steps=300, batch_size=16, lr=3e-3)


def moons():
    """The chapter's moons: 128 training points (seed 0) and 1000 test points (seed 1), noise 0.2."""
    X, y = bnlib.data.moons(128, noise=0.2, seed=0)
    X_test, y_test = bnlib.data.moons(1000, noise=0.2, seed=1)
    return X, y, X_test, y_test


def budget_runs(seeds=RUN["seeds"]) -> pd.DataFrame:
    """Every network of the three budgets (the chapter's call), one row each, with its budget."""
    X, y, X_test, y_test = moons()
    run = {**RUN, "seeds": list(seeds)}
    return pd.concat([pd.DataFrame(margin_experiment(X, y, X_test, y_test, progress=False, **run, **kw)).assign(budget=name)
                      for name, kw in BUDGETS.items()], ignore_index=True)


def jitter_network() -> torch.nn.Module:
    """The BN network of the chapter's jitter measurement, trained."""
    X, y, _, _ = moons()
    net = build_network("bn", JITTER["widths"], n_classes=1, seed=JITTER["seed"])
    fit(net, X, y, steps=JITTER["steps"], batch_size=JITTER["batch_size"], lr=JITTER["lr"], seed=JITTER["seed"],
        progress=False)
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    runs = budget_runs()
    net = jitter_network()
    out = {"setup": {"command": "python benchmarks/batch_noise_budgets.py", "budgets": BUDGETS,
                     "run": {**RUN, "batch_sizes": [0 if b is None else b for b in RUN["batch_sizes"]]},
                     "jitter": JITTER, "data": "bnlib.data.moons(128 / 1000, noise=0.2, seed=0 / 1)",
                     "wall_minutes": round((time.perf_counter() - start) / 60, 1), **written_by()},
           "budgets": json_columns(runs),
           "jitter_network": {k: v.tolist() for k, v in net.state_dict().items()}}
    args.out.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} in {out['setup']['wall_minutes']} min")


if __name__ == "__main__":
    main()
