"""How long a live widget takes to redraw after one slider step, per chapter (prints a table).

    .venv/bin/python benchmarks/widgets.py [--steps 12] [--repeat 3]

Each chapter's live widget (the same frame function and controls as the chapter's
``bnlib.widgets.live`` cell) is moved one step at a time along each control, through states not
seen before, and each redraw is timed from the new value to the PNG bytes the widget displays:

- ``new figure``: the way live widgets worked before (a new figure per move, drawn, then saved as
  the inline backend does, ``bbox_inches="tight"``);
- ``in place``: :class:`bnlib.widgets.LiveFigure` (one figure, only the frame's artists redrawn
  over a cached rendering of the axes; what the widgets do now).

Chapters 3 and 4 draw stored results; this script makes the same kind cheaply (chapter 3: the
partitions of the chapter's two arms at their snapshot epochs, trained as the chapter trains
them; chapter 4: the chapter's network, trained as in the chapter). The browser's share of a
redraw (sending and showing a PNG) is not in these numbers: tests/book/test_lab.py records it.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import statistics
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import bnlib  # noqa: E402
from bnlib import data, partition  # noqa: E402
from bnlib.frames import batch_band_frame, bn_explorer_frame, random_partition_frame, training_snapshot_frame  # noqa: E402
from bnlib.widgets import LiveFigure  # noqa: E402


def chapter1():
    controls = dict(depth=[3, 4, 5, 6, 5, 4], width=[6, 8, 10, 12, 14, 16], layer=[3, 2, 1, 2, 3],
                    seed=list(range(0, 8)), negative_slope=[0.1, 0.15, 0.2, 0.25, 0.3])
    return random_partition_frame, (4.5, 4.5), dict(depth=3, width=6, layer=3, seed=0, negative_slope=0.1), controls


def chapter2():
    controls = dict(center_x=[1.5, 1.75, 2.0, 2.25, 2.5], center_y=[1.0, 1.25, 1.5, 1.75], stretch=[1.0, 1.25, 1.5, 1.75],
                    batchnorm=[True, False], layer=[1, 2, 3, 4], unit=[0, 1, 2, 3], gamma=[1.0, 1.25, 1.5, 1.75],
                    beta=[0.0, 0.25, 0.5, 0.75], seed=[0, 1, 2, 3])
    base = dict(center_x=1.5, center_y=1.0, stretch=1.0, batchnorm=True, layer=1, unit=0, gamma=1.0, beta=0.0, seed=0)
    return bn_explorer_frame, (4.6, 5.4), base, controls


def chapter3():
    from bnlib.experiments.ch3_initialization import initial_model, snapshots

    X, y = data.spirals(300, seed=0, turns=1.0, noise=0.03, shift=(4.0, 4.0))
    widths, box, at = [2, 16, 16, 16], (2.5, 5.5, 2.5, 5.5), [0, 1, 2, 3, 5, 8, 12, 20]
    parts = {}
    for arm in ("plain", "bn_init"):
        states = snapshots(arm, X, y, widths=widths, n_classes=1, seed=0, at=at, batch_size=32, lr=1e-2)
        for epoch, state in zip(at, states):
            net = initial_model(arm, widths, 1, X, seed=0)
            net.load_state_dict(state)
            parts[arm, epoch] = partition(net, box)
    frame = functools.partial(training_snapshot_frame, partitions=parts, X=X, y=y)
    return frame, (4.5, 4.5), dict(arm="bn_init", epoch=0), dict(epoch=at, arm=["bn_init", "plain"])


def chapter4():
    from bnlib.experiments.ch4_noise import build_network
    from bnlib.train import fit

    X, y = data.moons(128, noise=0.2, seed=0)
    net = build_network("bn", [2, 16, 16], n_classes=1, seed=0)
    fit(net, X, y, steps=300, batch_size=16, lr=3e-3, seed=0, progress=False)
    net.eval()
    box = (-1.7, 2.7, -1.3, 1.8)
    frame = functools.partial(batch_band_frame, model=net, X=X, y=y, box=box, reference=partition(net, box, batch=X))
    controls = dict(batch_size=[8, 12, 16, 24, 32, 48, 64, 96, 128], seed=list(range(0, 6)))
    return frame, (4.6, 3.6), dict(batch_size=8, seed=0), controls


def chapter5():
    from bnlib.experiments import saved_run
    from bnlib.experiments.ch5_real import record_run
    from bnlib.frames import MODE_PAIR_BATCH_SIZES, MODE_PAIR_MOMENTA, MODE_PAIR_STEPS, mode_pair_frame

    setup = saved_run("real_networks_full")["setup"]
    spirals = {k: v for k, v in setup["data"]["spirals"].items() if k != "n"}
    X, y = data.spirals(setup["data"]["spirals"]["n"], seed=0, **spirals)
    modes = setup["modes"]
    runs = {N: record_run(X, y, widths=modes["widths"], n_classes=1, batch_size=N, steps=modes["steps"], seed=0,
                          at=MODE_PAIR_STEPS, lr=modes["lr"]) for N in MODE_PAIR_BATCH_SIZES}
    frame = functools.partial(mode_pair_frame, runs=runs, X=X, y=y, box=tuple(modes["box"]))
    controls = dict(batch_size=list(MODE_PAIR_BATCH_SIZES), momentum=list(MODE_PAIR_MOMENTA),
                    step=list(MODE_PAIR_STEPS)[::-1])
    base = dict(batch_size=16, momentum=0.1, step=modes["steps"])
    return frame, (9, 4.9), base, controls, 2


CHAPTERS = {"1: random partition": chapter1, "2: BN explorer": chapter2, "3: training snapshots": chapter3,
            "4: batch band": chapter4, "5: training vs eval mode": chapter5}


def steps(base: dict, controls: dict, n: int) -> list[dict]:
    """States one slider step apart: each control in turn walks its values from the base state."""
    out, state = [], dict(base)
    for name, values in controls.items():
        for value in values[1:]:
            state = dict(state, **{name: value})
            out.append(state)
    return out[:n] if n else out


def new_figure(draw, figsize, values) -> bytes:
    fig, ax = plt.subplots(figsize=figsize)
    draw(ax, **values)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=0, help="slider steps per widget (0: every step of every control)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of the whole walk (the median is over all steps)")
    ap.add_argument("--chapters", default="12345", help="which chapters, e.g. 12")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    bnlib.use_style()
    rows = []
    for name, setup in CHAPTERS.items():
        if name[0] not in args.chapters:
            continue
        draw, figsize, base, controls, *panels = setup()
        ncols = panels[0] if panels else 1
        walk = steps(base, controls, args.steps)
        old, new = [], []
        for _ in range(args.repeat):
            live = LiveFigure(draw, figsize=figsize, ncols=ncols)  # a fresh cache: every state is new
            live.render(**base)
            new_figure(draw, figsize, base)  # warm-up of both
            for values in walk:
                start = time.perf_counter()
                new_figure(draw, figsize, values)
                old.append(time.perf_counter() - start)
                start = time.perf_counter()
                live.render(**values)
                new.append(time.perf_counter() - start)
        rows.append((name, len(walk) * args.repeat, statistics.median(old) * 1e3, max(old) * 1e3,
                     statistics.median(new) * 1e3, max(new) * 1e3, live.full_draws))
        print(f"  {name}: done", file=sys.stderr)
    print(f"\nslider step -> PNG, in the kernel (ms); {os.cpu_count()} cores, torch threads 1")
    head = ("widget", "steps", "new figure median", "max", "in place median", "max", "full draws")
    print(f"{head[0]:<24} {head[1]:>5}  {head[2]:>17} {head[3]:>6}  {head[4]:>15} {head[5]:>6}  {head[6]:>10}")
    for name, n, om, ox, nm, nx, full in rows:
        print(f"{name:<24} {n:>5}  {om:>17.0f} {ox:>6.0f}  {nm:>15.0f} {nx:>6.0f}  {full:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
