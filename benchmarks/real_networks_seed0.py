"""Chapter 5's seed-0 runs of its first section, saved: the networks its figure and its widget show.

    python benchmarks/real_networks_seed0.py [--out PATH]

Chapter 5 opens with one BN network on the spirals, trained by steps at each batch size of
:data:`bnlib.frames.MODE_PAIR_BATCH_SIZES` and drawn in training and in evaluation mode. Float32
training drifts between CPUs' kernels (execution.md), so the chapter draws and quotes these saved
runs (:func:`bnlib.experiments.ch5_real.record_run`, seed 0, exactly the chapter's call; the same
networks as seed 0 of benchmarks/real_networks_full.py), re-trains them live and checks the live run
against them within the spread benchmarks/isa_spread.py measured. Writes
bnlib/experiments/real_networks_seed0.json with the torch version and CPU capability that wrote it.
A few seconds.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import torch

from bnlib import data
from bnlib.experiments import saved_run, written_by
from bnlib.experiments.ch5_real import record_run
from bnlib.frames import MODE_PAIR_BATCH_SIZES, MODE_PAIR_STEPS

OUT = pathlib.Path(__file__).resolve().parent.parent / "bnlib" / "experiments" / "real_networks_seed0.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    setup = saved_run("real_networks_full")["setup"]
    spec = {k: v for k, v in setup["data"]["spirals"].items() if k != "n"}
    X, y = data.spirals(setup["data"]["spirals"]["n"], seed=0, **spec)
    modes = setup["modes"]
    runs = {str(N): record_run(X, y, widths=modes["widths"], n_classes=1, batch_size=N, steps=modes["steps"], seed=0,
                               at=MODE_PAIR_STEPS, lr=modes["lr"]).as_json(modes["widths"], 1)
            for N in MODE_PAIR_BATCH_SIZES}
    out = {"setup": {"command": "python benchmarks/real_networks_seed0.py", "seed": 0,
                     "batch_sizes": list(MODE_PAIR_BATCH_SIZES), "steps": modes["steps"], "at": list(MODE_PAIR_STEPS),
                     "widths": modes["widths"], "lr": modes["lr"], "data": "the spirals of real_networks_full",
                     **written_by()},
           "runs": runs}
    args.out.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
