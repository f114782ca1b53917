"""Chapter 5's planes through digit images: distances and region counts near the images, over seeds.

    python benchmarks/planes_full.py [--seeds 10] [--triples 5] [--out PATH]

One table goes to bnlib/experiments/planes_full.json (package data, loaded by
`bnlib.experiments.saved_run("planes_full")`), which chapter 5 loads, compares (paired by seed),
draws and checks (its section "Many planes, trained networks"). Every network is seeded and each
run uses one thread, so a rerun writes the same file byte for byte.

``planes`` (:func:`bnlib.experiments.ch5_real.plane_experiment`): for each seed, ``--triples``
triples of test digits of three different classes (drawn with the seed); for the book's ConvNet
and small ResNet, each arm (no BN with torch's initialization, no BN with He initialization, BN),
untrained and after 5 epochs of Adam on the training digits (the training of the conv-training
section), in evaluation mode (BN with precise statistics; trained, also with running
statistics): around each image, the exact partition of a square of half-width 0.5 (pixel-space
units) in the plane through its triple, its region count and the image's distance to the nearest
ReLU boundary (max-pooling boundaries and units through the image left out, and counted).

Takes about three minutes of CPU time on one thread (166 s measured); on a two-core machine loaded
to 10-19 that was 16 to 18 minutes of wall time. ``--seeds`` and ``--triples`` shrink it.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np
import torch

import bnlib
from bnlib.experiments import written_by
from bnlib.experiments.ch5_real import plane_experiment
from real_networks_full import rounded  # the same rounding as the other saved run (this folder is on sys.path)

OUT = pathlib.Path(__file__).resolve().parent.parent / "bnlib" / "experiments" / "planes_full.json"

SETUP = {"triples": 5, "half_width": 0.5, "epochs": 5, "batch_size": 32, "lr": 1e-2,
         "nets": ["convnet", "resnet"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--triples", type=int, default=SETUP["triples"])
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start, cpu = time.time(), time.process_time()
    X, Xt, y, yt = bnlib.data.digits(seed=0)
    setup = {**SETUP, "triples": args.triples}
    planes = plane_experiment(X, y, Xt, yt, seeds=range(args.seeds), **setup)
    if not np.isfinite(planes["distance"]).all() or (planes["distance"] >= setup["half_width"]).any():
        raise SystemExit("an image has no ReLU boundary within the square's half-width: widen it")
    out = {"setup": {"seeds": args.seeds, "data": "bnlib.data.digits(seed=0)", **setup, **written_by()},
           "planes": planes.to_dict(orient="records")}
    args.out.write_text(json.dumps(rounded(out), separators=(",", ":")) + "\n")  # compact: one row per image
    print(f"wrote {args.out} ({len(planes)} rows) in {time.time() - start:.0f} s "
          f"({time.process_time() - cpu:.0f} s of CPU time)")


if __name__ == "__main__":
    main()
