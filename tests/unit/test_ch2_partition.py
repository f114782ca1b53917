"""Unit tests of bnlib.experiments.ch2_partition: the chapter-2 runners, seeded and consistent with
the exact partition and with torch."""

from __future__ import annotations

import copy

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import optimize, stats  # noqa: E402
from scipy.linalg import null_space  # noqa: E402
from torch import nn  # noqa: E402

import bnlib  # noqa: E402
from bnlib.experiments import ch2_partition as g  # noqa: E402
from bnlib.frames import BN_EXPLORER_BOX, bn_explorer_frame, explorer_data  # noqa: E402
from _oracles import TorchOracle, cluster, uniform  # noqa: E402



def test_layer_experiment_deterministic_and_consistent():
    X = cluster(60, seed=0)
    kw = dict(depth=3, width=4, seeds=[0, 1, 2], progress=False, n_points=30)
    a, b = g.layer_experiment(X, **kw), g.layer_experiment(X, **kw)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert len(a["seed"]) == 2 * 3 * 3
    net = bnlib.MLP([2, 4, 4, 4], batchnorm=True, seed=1)
    part = bnlib.partition(net, (-3.0, 6.0, -3.0, 5.0), batch=X)
    row = (a["batchnorm"]) & (a["seed"] == 1) & (a["layer"] == 2)
    want = np.median(np.minimum(part.distance_to_boundary(X[:30], 1), part.distance_to_boundary(X[:30], 2)))
    assert a["distance"][row][0] == pytest.approx(want)
    assert a["regions"][row][0] == len(part.regions(2))


def test_shift_scale_experiment_bn_follows_the_data_exactly():
    X = cluster(80, seed=3)
    t = g.shift_scale_experiment(X, shifts=[0, 3, 9], scales=[0.5, 4], seeds=[0, 1], n_probe=200, progress=False)
    for seed in (0, 1):
        bn = t["batchnorm"] & (t["seed"] == seed)
        # exact up to BN's eps, which moves a few boundaries slightly (exact test below)
        assert np.ptp(t["regions"][bn]) <= 0.05 * t["regions"][bn].mean()
        assert np.ptp(t["distance"][bn]) < 0.1 * t["distance"][bn].mean()
        assert np.ptp(t["regions"][~bn & (t["seed"] == seed)]) > 0
    again = g.shift_scale_experiment(X, shifts=[0, 3, 9], scales=[0.5, 4], seeds=[0, 1], n_probe=200, progress=False)
    assert all(np.array_equal(t[k], again[k]) for k in t)
    with pytest.raises(ValueError, match="shifts"):
        g.shift_scale_experiment(X, shifts=[-1], seeds=[0], progress=False)
    with pytest.raises(ValueError, match="scales"):
        g.shift_scale_experiment(X, scales=[0], seeds=[0], progress=False)


def test_digits_experiment_bn_centres_every_hyperplane():
    X = np.random.default_rng(0).uniform(size=(120, 16))
    t = g.digits_experiment(X, widths=[8, 8], seeds=[0, 1], n_points=30, progress=False)
    bn = t["batchnorm"]
    assert np.allclose(t["offset"][bn], 0, atol=1e-9) and np.all(t["cut"][bn] == 1)
    assert np.all(t["offset"][~bn] > 0)
    again = g.digits_experiment(X, widths=[8, 8], seeds=[0, 1], n_points=30, progress=False)
    assert all(np.array_equal(t[k], again[k]) for k in t)
    with pytest.raises(ValueError, match="seeds"):
        g.digits_experiment(X, seeds=[], progress=False)
