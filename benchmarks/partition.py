"""Speed of bnlib.partition against regioncam, and of the chapter-1 widget's redraw.

Run:  .venv/bin/python benchmarks/partition.py [--repeats 7]
(regioncam is a benchmark-only dependency: `pip install -e .[bench]`.)

For each net (depth x width, leaky-ReLU 0.1, seed 0), with and without BN (statistics from
200 points of a two-cluster Gaussian mixture), it prints the median time of
``bnlib.partition`` on the box [-3, 3]^2 (the default compiled engine, and the numpy
reference engine ``method="numpy"``), its region count, regioncam's time and count
on the same float64 affine layers (BN folded by bnlib, given to regioncam in float32,
the only precision it takes; also its count without the zero-area slivers that float32
leaves where BN's lines meet in one point), the time ratio, and the median time of the widget's full
redraw (network, partition, drawing, canvas render).
"""

from __future__ import annotations

import argparse
import statistics
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import bnlib  # noqa: E402
from bnlib.frames import random_partition_frame  # noqa: E402

BOX = (-3.0, 3.0, -3.0, 3.0)
NETS = [(4, 6), (4, 16), (8, 32), (4, 64)]


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def regioncam_partition(layers):
    import regioncam

    cam = regioncam.Regioncam(BOX[1])
    for layer in layers:
        cam.linear(layer.W.T.astype(np.float32).copy(), layer.b.astype(np.float32).copy())
        if layer.has_activation:
            cam.leaky_relu(layer.slope)
    return cam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    try:
        import regioncam  # noqa: F401
    except ImportError:
        regioncam = None
        print("regioncam is not installed (pip install -e .[bench]); its columns stay empty")

    X, _ = bnlib.data.gaussian_mixture(200, centers=[(1.0, 0.5), (-0.5, 1.5)], std=(0.5, 0.2), angle=0.4, seed=0)
    header = f"{'net':>6} {'BN':>3} {'bnlib ms':>9} {'numpy ms':>9} {'regions':>8} {'regioncam ms':>13} {'rc regions':>11} {'rc > 1e-12':>10} {'diff %':>7} {'rc/bnlib':>9} {'redraw ms':>10}"
    print(header)
    print("-" * len(header))
    for depth, width in NETS:
        for bn in (False, True):
            net = bnlib.MLP([2] + [width] * depth, batchnorm=bn, seed=0)
            batch = X if bn else None
            t_bn = median_time(lambda: bnlib.partition(net, BOX, batch=batch), args.repeats)
            n = bnlib.partition(net, BOX, batch=batch).n_regions
            t_np = median_time(lambda: bnlib.partition(net, BOX, batch=batch, method="numpy"), max(1, args.repeats // 3))
            rc_ms = rc_n = rc_big = diff = ratio = ""
            if regioncam is not None:
                layers = bnlib.affine_layers(net, batch=batch)
                t_rc = median_time(lambda: regioncam_partition(layers), args.repeats)
                cam = regioncam_partition(layers)
                # float32 regioncam leaves zero-area slivers where lines meet in one point (BN):
                # count its faces larger than 1e-12 of the box too
                areas = np.array([face.area for face in cam.faces])
                n_big = int((areas > 1e-12 * (BOX[1] - BOX[0]) * (BOX[3] - BOX[2])).sum())
                rc_ms, rc_n, rc_big = f"{1e3 * t_rc:.1f}", str(cam.num_faces), str(n_big)
                diff = f"{100 * abs(n - n_big) / n_big:.2f}"
                ratio = f"{t_rc / t_bn:.2f}"
            redraw = ""
            if not bn:
                fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=80)

                def frame():
                    ax.clear()
                    random_partition_frame(ax, depth=depth, width=width, seed=0, box=BOX)
                    fig.canvas.draw()

                redraw = f"{1e3 * median_time(frame, args.repeats):.1f}"
                plt.close(fig)
            print(
                f"{depth}x{width:<4} {'yes' if bn else 'no':>3} {1e3 * t_bn:9.1f} {1e3 * t_np:9.1f} {n:8d} {rc_ms:>13} {rc_n:>11} {rc_big:>10} {diff:>7} {ratio:>9} {redraw:>10}"
            )


if __name__ == "__main__":
    main()
