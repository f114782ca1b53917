"""The two implementations of the cutting engine (compiled and numpy) agree exactly."""

import numpy as np
import pytest
import torch

import bnlib
from bnlib import arrangement


def _nets():
    X, _ = bnlib.data.gaussian_mixture(60, centers=[(1.5, 1.0)], std=(0.6, 0.2), angle=0.3, seed=0)
    for seed in range(6):
        bn = seed % 2 == 1
        net = bnlib.MLP([2, 7, 5, 6], batchnorm=bn, negative_slope=(0.0, 0.1, 0.3)[seed % 3], n_classes=2, seed=seed)
        if seed == 5:  # BN with random beta/gamma: boundaries no longer through the mean
            with torch.no_grad():
                for m in net:
                    if isinstance(m, torch.nn.BatchNorm1d):
                        m.bias.normal_(generator=torch.Generator().manual_seed(1))
        yield net, (X if bn else None)


@pytest.mark.parametrize("case", list(range(6)))
def test_compiled_and_numpy_engines_agree(case):
    net, batch = list(_nets())[case]
    box = (-3.0, 3.0, -2.5, 2.0)
    fast = bnlib.partition(net, box, batch=batch, method="compiled")
    ref = bnlib.partition(net, box, batch=batch, method="numpy")
    key = lambda p: sorted(map(bytes, np.packbits(p.codes, axis=1)))  # noqa: E731
    assert key(fast) == key(ref)
    order_f = np.argsort([bytes(b) for b in np.packbits(fast.codes, axis=1)])
    order_r = np.argsort([bytes(b) for b in np.packbits(ref.codes, axis=1)])
    assert np.allclose(fast.areas()[order_f], ref.areas()[order_r], rtol=1e-9, atol=1e-12)
    assert np.allclose(fast.affine_A[order_f], ref.affine_A[order_r])
    # the same boundary: total length per (layer, unit)
    for p, q in [(fast, ref)]:
        for layer in range(1, p.depth + 1):
            a, b = p.boundaries(layer), q.boundaries(layer)
            la = np.bincount(a.unit, a.lengths(), minlength=8)
            lb = np.bincount(b.unit, b.lengths(), minlength=8)
            assert np.allclose(la, lb, rtol=1e-9, atol=1e-9)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        bnlib.partition(bnlib.MLP([2, 3]), (-1, 1, -1, 1), method="fast")


def test_polygon_areas_of_known_shapes():
    square = np.array([[[0, 0], [2, 0], [2, 2], [0, 2]]], dtype=float) + 1e6
    triangle = np.array([[[0, 0], [1, 0], [0, 1], [0, 1]]], dtype=float)  # padded with a repeat
    assert arrangement.polygon_areas(square, np.array([4]))[0] == pytest.approx(4.0, abs=1e-9)
    assert arrangement.polygon_areas(triangle, np.array([3]))[0] == pytest.approx(0.5)
