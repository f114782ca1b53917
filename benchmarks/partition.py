"""Speed of bnlib.partition against regioncam, and of the chapter-1 widget's redraw.

Run:  .venv/bin/python benchmarks/partition.py [--repeats 7] [--only-planes | --no-planes]
(one BLAS thread unless OMP_NUM_THREADS says otherwise: regioncam runs on one thread.)
(regioncam is a benchmark-only dependency: `pip install -e .[bench]`.)

For each net (depth x width, leaky-ReLU 0.1, seed 0), with and without BN (statistics from
200 points of a two-cluster Gaussian mixture), it prints the median time of
``bnlib.partition`` on the box [-3, 3]^2 (the default compiled engine, and the numpy
reference engine ``method="numpy"``), its region count, regioncam's time and count
on the same float64 affine layers (BN folded by bnlib, given to regioncam in float32,
the only precision it takes; also its count without the zero-area slivers that float32
leaves where BN's lines meet in one point), the time ratio, and the median time of the widget's full
redraw (network, partition, drawing, canvas render).

Plane cases (``--planes``, on by default; ``--only-planes`` skips the 2-D table): a plane through
three digit images (scikit-learn's 8x8 digits, the first three training images), for an MLP
64-64-64-64-64 (leaky-ReLU 0.1) without and with BN (batch statistics of 200 training images), and
for convolutional nets read by bnlib into dense matrices (each convolution's exact matrix on the
flattened image). regioncam gets ``Regioncam.through_points`` of the three images (float32) and the
same float64 layers (BN folded by bnlib) in float32; bnlib gets the torch model and regioncam's own
plane and box (``bnlib.Plane(origin, basis)`` from regioncam's plane), so both partition the same
square of the same plane. bnlib's time includes reading the torch model. The conv net passed to
regioncam is :func:`bnlib.nets.ConvNet` with its MaxPool2d replaced by AvgPool2d(2) (regioncam's
max-pool takes the max over a whole layer, not over windows); the book's ConvNet (max-pool) and
ResNet are timed by bnlib alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

# one thread for both engines (regioncam runs on one): set before numpy loads its BLAS
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

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


def _avgpool_convnet(batchnorm: bool):
    from torch import nn

    net = bnlib.nets.ConvNet(batchnorm=batchnorm, seed=0)
    return nn.Sequential(*[nn.AvgPool2d(2) if isinstance(m, nn.MaxPool2d) else m for m in net])


def plane_cases(repeats: int) -> None:
    """bnlib against regioncam on planes through three digit images."""
    try:
        import regioncam
    except ImportError:
        regioncam = None
    from bnlib.nets import ConvNet, ResNet, read_network

    X, _, _, _ = bnlib.data.digits(seed=0)
    images = X[:3]
    batch = X[:200]
    cases = [
        ("mlp 64x4", lambda: bnlib.MLP([64, 64, 64, 64, 64], seed=0), False, True),
        ("mlp 64x4 BN", lambda: bnlib.MLP([64, 64, 64, 64, 64], batchnorm=True, seed=0), True, True),
        ("conv avgpool", lambda: _avgpool_convnet(False), False, True),
        ("conv avgpool BN", lambda: _avgpool_convnet(True), True, True),
        ("ConvNet (maxpool)", lambda: ConvNet(seed=0), False, False),
        ("ConvNet (maxpool) BN", lambda: ConvNet(batchnorm=True, seed=0), True, False),
        ("ResNet", lambda: ResNet(seed=0), False, False),
        ("ResNet BN", lambda: ResNet(batchnorm=True, seed=0), True, False),
    ]
    header = (f"{'plane through 3 digits':>22} {'bnlib ms':>9} {'regions':>8} {'regioncam ms':>13} {'rc regions':>11} "
              f"{'diff %':>7} {'bnlib/rc':>9}")
    print()
    print(header)
    print("-" * len(header))
    for name, make, bn, compare in cases:
        net = make()
        image = any(type(m).__name__ == "Conv2d" for m in net.modules())
        shape = (1, 8, 8) if image else (64,)
        pts = images.reshape((3,) + shape)
        use = batch.reshape((-1,) + shape) if bn else None
        if regioncam is not None:
            cam0 = regioncam.Regioncam.through_points(images.astype(np.float32))
            W, b = np.asarray(cam0.plane.weight, dtype=np.float64), np.asarray(cam0.plane.bias, dtype=np.float64)
            # regioncam's plane axes are orthonormal up to float32: orthonormalise them in float64
            Q, R = np.linalg.qr(W.T)
            Q = Q * np.sign(np.diag(R))
            plane = bnlib.Plane(b, Q, shape)
            s = float(np.abs(np.asarray(cam0.vertex_inputs)).max())
            box = (-s, s, -s, s)
        else:
            plane = bnlib.Plane.through(pts)
            box = plane.default_box()
        t_bn = median_time(lambda: bnlib.partition(net, box, plane=plane, batch=use), repeats)
        n = bnlib.partition(net, box, plane=plane, batch=use).n_regions
        rc_ms = rc_n = diff = ratio = ""
        if regioncam is not None and compare:
            layers = read_network(net, shape, batch=use).affine_layers()

            def run_rc():
                cam = regioncam.Regioncam.through_points(images.astype(np.float32))
                for layer in layers:
                    cam.linear(layer.W.T.astype(np.float32).copy(), layer.b.astype(np.float32).copy())
                    if layer.has_activation:
                        cam.leaky_relu(layer.slope) if layer.slope else cam.relu()
                return cam

            t_rc = median_time(run_rc, repeats)
            n_rc = run_rc().num_faces
            rc_ms, rc_n = f"{1e3 * t_rc:.1f}", str(n_rc)
            diff = f"{100 * abs(n - n_rc) / n_rc:.2f}"
            ratio = f"{t_bn / t_rc:.2f}"
        print(f"{name:>22} {1e3 * t_bn:9.1f} {n:8d} {rc_ms:>13} {rc_n:>11} {diff:>7} {ratio:>9}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only-planes", action="store_true", help="only the plane cases")
    parser.add_argument("--no-planes", action="store_true", help="only the 2-D cases")
    args = parser.parse_args()
    if args.only_planes:
        plane_cases(args.repeats)
        return
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
    if not args.no_planes:
        plane_cases(args.repeats)


if __name__ == "__main__":
    main()
