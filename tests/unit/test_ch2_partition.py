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
from bnlib.experiments.ch1_counting import counting_network  # noqa: E402
from bnlib.frames import BN_EXPLORER_BOX, bn_explorer_frame, explorer_data  # noqa: E402
from _oracles import TorchOracle, cluster, uniform  # noqa: E402



def test_layer_experiment_deterministic_and_consistent():
    X = cluster(60, seed=0)
    kw = dict(depth=3, width=4, seeds=[0, 1, 2], progress=False, n_points=30)
    a, b = g.layer_experiment(X, **kw), g.layer_experiment(X, **kw)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert len(a["seed"]) == 3 * 3 * 3 and a["arm"].tolist()[::9] == list(g.ARMS)
    assert np.array_equal(a["batchnorm"], a["arm"] == "bn")
    box = (-3.0, 6.0, -3.0, 5.0)
    for arm, net, batch in [("bn", bnlib.MLP([2, 4, 4, 4], batchnorm=True, seed=1), X),
                            ("plain_he", counting_network(3, 4, seed=1, init="he"), None)]:
        part = bnlib.partition(net, box, batch=batch)
        row = (a["arm"] == arm) & (a["seed"] == 1) & (a["layer"] == 2)
        want = np.median(np.minimum(part.distance_to_boundary(X[:30], 1), part.distance_to_boundary(X[:30], 2)))
        assert a["distance"][row][0] == pytest.approx(want)
        assert a["regions"][row][0] == len(part.regions(2))
    two = g.layer_experiment(X, **kw, arms=["bn", "plain"])
    assert two["arm"].tolist()[::9] == ["bn", "plain"]
    for k in two:  # an arm's rows do not depend on which other arms run
        assert np.array_equal(two[k][two["arm"] == "plain"], a[k][a["arm"] == "plain"])


def test_experiments_refuse_unknown_or_repeated_arms():
    X = cluster(40, seed=1)
    with pytest.raises(ValueError, match="arms"):
        g.layer_experiment(X, depth=1, seeds=[0], arms=["plain", "lsuv"], progress=False)
    with pytest.raises(ValueError, match="repeat"):
        g.shift_scale_experiment(X, seeds=[0], arms=["bn", "bn"], progress=False)
    with pytest.raises(ValueError, match="arms"):
        g.digits_experiment(X, seeds=[0], arms=[], progress=False)


def test_network_arms():
    # 2-D and equal widths: exactly chapter 1's He network
    he, ch1 = g.network("plain_he", [2, 6, 6, 6], seed=3), counting_network(3, 6, seed=3, init="he")
    assert all(torch.equal(p, q) for p, q in zip(he.parameters(), ch1.parameters()))
    plain, bn = g.network("plain", [2, 6, 6, 6], seed=3), g.network("bn", [2, 6, 6, 6], seed=3)
    lin = [m for m in plain if isinstance(m, nn.Linear)]
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(lin, [m for m in bn if isinstance(m, nn.Linear)]))
    assert any(isinstance(m, nn.BatchNorm1d) for m in bn) and not any(isinstance(m, nn.BatchNorm1d) for m in he)
    # any shape: He's variance 2 / ((1 + a^2) fan_in), torch's biases, seeded
    s = 0.1
    wide = g.network("plain_he", [64, 256, 128], seed=0, negative_slope=s)
    ref = g.network("plain", [64, 256, 128], seed=0, negative_slope=s)
    for m, r in zip([m for m in wide if isinstance(m, nn.Linear)], [m for m in ref if isinstance(m, nn.Linear)]):
        want = np.sqrt(2 / ((1 + s**2) * m.in_features))
        w = m.weight.detach()
        assert float(w.std()) == pytest.approx(want, rel=0.03) and abs(float(w.mean())) < 0.05 * want
        assert torch.equal(m.bias, r.bias)
    again = g.network("plain_he", [64, 256, 128], seed=0, negative_slope=s)
    assert all(torch.equal(p, q) for p, q in zip(wide.parameters(), again.parameters()))
    with pytest.raises(ValueError, match="arm"):
        g.network("he", [2, 3], seed=0)


def _closest_pair(ka, kb):
    """Brute force: the (i, j) of the two count lists whose ratio is nearest 1 (first on ties)."""
    best = None
    for i, x in enumerate(ka):
        for j, y in enumerate(kb):
            gap = abs(np.log(x / y))
            if best is None or gap < best[0] - 1e-12:
                best = (gap, i, j)
    return best


def test_matched_cells_picks_the_closest_layers_within_the_tolerance():
    rng = np.random.default_rng(0)
    rows = {"arm": [], "seed": [], "layer": [], "occupied": [], "quantization": []}
    counts = {}
    for seed in range(40):
        for arm, start in [("bn", 10), ("plain", 2)]:
            k = np.cumsum(rng.integers(0 if arm == "plain" else 5, 8, size=5)) + start
            counts[arm, seed] = k
            for layer, c in enumerate(k, start=1):
                rows["arm"].append(arm), rows["seed"].append(seed), rows["layer"].append(layer)
                rows["occupied"].append(int(c)), rows["quantization"].append(1 / c)
    runs = {key: np.array(v) for key, v in rows.items()}
    for tolerance in (0.0, 0.1, 0.5):
        m = g.matched_cells(runs, "bn", "plain", tolerance=tolerance)
        assert m["arm"].tolist() == ["bn", "plain"] * (len(m["arm"]) // 2)
        matched = set(m["seed"][::2].tolist())
        assert np.array_equal(m["seed"][::2], m["seed"][1::2])
        for seed in range(40):
            gap, i, j = _closest_pair(counts["bn", seed], counts["plain", seed])
            assert (seed in matched) == (gap <= np.log1p(tolerance) + 1e-12)
            if seed in matched:
                pair = m["layer"][m["seed"] == seed].tolist()
                got = abs(np.log(counts["bn", seed][pair[0] - 1] / counts["plain", seed][pair[1] - 1]))
                assert got == pytest.approx(gap)
        if tolerance == 0.0:
            assert np.array_equal(m["occupied"][::2], m["occupied"][1::2])
    assert len(g.matched_cells(runs, "bn", "plain", tolerance=0.5)["seed"]) > len(
        g.matched_cells(runs, "bn", "plain", tolerance=0.0)["seed"])
    with pytest.raises(ValueError, match="must hold rows of arm"):
        g.matched_cells(runs, "bn", "plain_he")
    with pytest.raises(ValueError, match="occupied"):
        g.matched_cells({"arm": runs["arm"], "seed": runs["seed"], "layer": runs["layer"]}, "bn", "plain")


def test_shift_scale_experiment_bn_follows_the_data_exactly():
    X = cluster(80, seed=3)
    t = g.shift_scale_experiment(X, shifts=[0, 3, 9], scales=[0.5, 4], seeds=[0, 1], n_probe=200, progress=False)
    assert set(t["arm"].tolist()) == set(g.ARMS) and np.array_equal(t["batchnorm"], t["arm"] == "bn")
    for seed in (0, 1):
        bn = t["batchnorm"] & (t["seed"] == seed)
        # exact up to BN's eps, which moves a few boundaries slightly (exact test below)
        assert np.ptp(t["regions"][bn]) <= 0.05 * t["regions"][bn].mean()
        assert np.ptp(t["distance"][bn]) < 0.1 * t["distance"][bn].mean()
        for arm in ("plain", "plain_he"):  # without BN, the partition stays where the weights put it
            assert np.ptp(t["regions"][(t["arm"] == arm) & (t["seed"] == seed)]) > 0
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
    assert np.array_equal(bn, t["arm"] == "bn") and set(t["arm"].tolist()) == set(g.ARMS)
    assert np.allclose(t["offset"][bn], 0, atol=1e-9) and np.all(t["cut"][bn] == 1)
    assert np.all(t["offset"][~bn] > 0)
    again = g.digits_experiment(X, widths=[8, 8], seeds=[0, 1], n_points=30, progress=False)
    assert all(np.array_equal(t[k], again[k]) for k in t)
    with pytest.raises(ValueError, match="seeds"):
        g.digits_experiment(X, seeds=[], progress=False)
