"""Unit tests of bnlib.counting: the region-counting experiment of chapter 1.

The counts come from bnlib's exact partition; the oracles here do not: torch's own forward
pass (activation patterns on a fine grid and along a densely sampled segment, see
tests/unit/_oracles.py), and plane geometry (the cells of a line arrangement in a box).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

import bnlib
from bnlib.experiments.ch1_counting import INITS, counting_network, region_counts
from bnlib.stats import loglog_slope, summarize
from _oracles import TorchOracle, grid

BOX = (-3.0, 3.0, -3.0, 3.0)


def arrangement_cells(W: np.ndarray, c: np.ndarray, box) -> int:
    """Cells cut from a box by the lines W x + c = 0 in general position: 1 + lines + crossings."""
    xmin, xmax, ymin, ymax = box
    corners = np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]])
    side = corners @ W.T + c
    lines = int(((side.max(0) > 0) & (side.min(0) < 0)).sum())
    crossings = 0
    for i, j in itertools.combinations(range(len(W)), 2):
        p = np.linalg.solve(W[[i, j]], -c[[i, j]])
        crossings += bool(xmin < p[0] < xmax and ymin < p[1] < ymax)
    return 1 + lines + crossings


# ----------------------------------------------------------------------------------------
# the table


def test_table_has_one_row_per_network_in_order():
    t = region_counts([1, 3], [2, 5], seeds=[4, 0, 7], progress=False)
    assert set(t) == {"depth", "width", "neurons", "seed", "regions", "crossings"}
    assert all(isinstance(v, np.ndarray) and len(v) == 12 for v in t.values())
    rows = list(zip(t["depth"].tolist(), t["width"].tolist(), t["seed"].tolist()))
    assert rows == list(itertools.product([1, 3], [2, 5], [4, 0, 7]))
    assert np.array_equal(t["neurons"], t["depth"] * t["width"])
    assert (t["regions"] >= 1).all() and (t["crossings"] >= 1).all()
    assert (t["crossings"] <= t["regions"]).all()


def test_same_seed_same_table_other_seed_other_counts():
    kwargs = dict(box=BOX, init="he", progress=False)
    a = region_counts([2, 3], [6], seeds=[0, 1, 2], **kwargs)
    b = region_counts([2, 3], [6], seeds=[0, 1, 2], **kwargs)
    c = region_counts([2, 3], [6], seeds=[10, 11, 12], **kwargs)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["regions"], c["regions"])


def test_rows_match_a_partition_of_the_same_network():
    t = region_counts([2], [5], seeds=[3], negative_slope=0.2, init="he", progress=False)
    part = bnlib.partition(counting_network(2, 5, seed=3, negative_slope=0.2, init="he"), BOX)
    assert t["regions"][0] == part.n_regions
    assert t["crossings"][0] == len(part.crossings((-3, -3), (3, 3))) + 1


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("width", [3, 6, 10])
def test_one_layer_counts_equal_the_line_arrangement(init, width):
    """Oracle: plane geometry. One layer's regions are the cells of its lines in the box."""
    t = region_counts([1], [width], seeds=range(4), init=init, progress=False)
    for seed, regions in zip(t["seed"], t["regions"]):
        lin = counting_network(1, width, seed=int(seed), init=init)[0]
        W, c = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
        assert regions == arrangement_cells(W, c, BOX)


@pytest.mark.parametrize("init", INITS)
def test_grid_patterns_never_exceed_the_exact_count(init):
    """Oracle: torch's activation patterns on a fine grid. Each pattern is one convex region,
    so a grid cannot show more patterns than there are regions, and a fine grid misses few."""
    t = region_counts([2, 3], [4, 6], seeds=[0, 1], init=init, progress=False)
    pts = grid(BOX, 500)
    for d, w, s, regions in zip(t["depth"], t["width"], t["seed"], t["regions"]):
        net = counting_network(int(d), int(w), seed=int(s), init=init)
        pattern = TorchOracle(net).pattern(pts)
        seen = len(np.unique(pattern @ (2 ** np.arange(pattern.shape[1], dtype=np.int64))))
        assert seen <= regions
        assert seen >= 0.9 * regions, (d, w, s, seen, regions)


@pytest.mark.parametrize("segment", [None, ((-2.5, 1.0), (2.0, -2.9)), ((0.1, -3.0), (0.1, 3.0))])
def test_crossings_equal_pattern_changes_along_a_dense_line(segment):
    """Oracle: torch's activation pattern at 200 001 points along the segment; every change of
    pattern between neighbouring samples is one boundary crossing."""
    t = region_counts([1, 2, 3], [5], seeds=[0, 1], init="he", segment=segment, progress=False)
    p0, p1 = np.asarray(((-3, -3), (3, 3)) if segment is None else segment, dtype=np.float64)
    s = np.linspace(0.0, 1.0, 200_001)[:, None]
    line = p0 + s * (p1 - p0)
    for d, w, seed, crossings in zip(t["depth"], t["width"], t["seed"], t["crossings"]):
        pattern = TorchOracle(counting_network(int(d), int(w), seed=int(seed), init="he")).pattern(line)
        changes = int((pattern[1:] != pattern[:-1]).any(1).sum())
        assert crossings == changes + 1, (d, w, seed)


def test_progress_bar_is_shown_only_when_asked(capsys):
    region_counts([1], [3], seeds=[0], progress=False)
    assert "partitions" not in capsys.readouterr().err
    region_counts([1], [3], seeds=[0], progress=True)
    assert "partitions" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------
# the networks


def test_torch_init_is_bnlib_mlp():
    a = counting_network(3, 7, seed=5, negative_slope=0.2, init="torch")
    b = bnlib.MLP([2, 7, 7, 7], negative_slope=0.2, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("slope", [0.0, 0.1, 0.5])
def test_he_init_has_the_he_variance_and_torch_biases(slope):
    net = counting_network(2, 256, seed=0, negative_slope=slope, init="he")
    ref = bnlib.MLP([2, 256, 256], negative_slope=slope, seed=0)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for lin, ref_lin in zip(linears, [m for m in ref if isinstance(m, nn.Linear)]):
        want = np.sqrt(2.0 / ((1.0 + slope**2) * lin.in_features))
        got = float(lin.weight.detach().double().std())
        tol = 0.03 if lin.weight.numel() > 10_000 else 0.25
        assert abs(got / want - 1) < tol, (lin.in_features, got, want)
        assert torch.equal(lin.bias, ref_lin.bias)


def test_he_init_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = counting_network(2, 8, seed=1, init="he")
    assert torch.equal(torch.get_rng_state(), state)
    b = counting_network(2, 8, seed=1, init="he")
    c = counting_network(2, 8, seed=2, init="he")
    assert torch.equal(a[2].weight, b[2].weight) and not torch.equal(a[2].weight, c[2].weight)


# ----------------------------------------------------------------------------------------
# summaries


def test_summarize_matches_numpy_per_group():
    t = region_counts([1, 2], [3, 4], seeds=[0, 1, 2], progress=False)
    s = summarize(t, "regions", by=["depth", "width", "neurons"])
    assert len(s["depth"]) == 4
    for i in range(4):
        k = (t["depth"] == s["depth"][i]) & (t["width"] == s["width"][i])
        v = t["regions"][k].astype(float)
        assert s["n"][i] == 3 and s["neurons"][i] == s["depth"][i] * s["width"][i]
        assert np.isclose(s["mean"][i], v.mean()) and np.isclose(s["std"][i], v.std())
        assert s["min"][i] == v.min() and s["max"][i] == v.max()


def test_loglog_slope_recovers_power_laws():
    x = np.array([3.0, 10.0, 40.0, 200.0])
    assert loglog_slope(x, 0.4 * x**2) == pytest.approx(2.0)
    assert loglog_slope(x, 7 * x) == pytest.approx(1.0)
    assert loglog_slope(x, 2.0**x) > 10  # exponential growth shows as a steep slope


# ----------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (([], [4], [0]), {}, "depths"),
        (([0], [4], [0]), {}, "depths"),
        (([1.5], [4], [0]), {}, "depths"),
        (([True], [4], [0]), {}, "depths"),
        ((3, [4], [0]), {}, "depths"),
        (([1], [0], [0]), {}, "widths"),
        (([1], ["4"], [0]), {}, "widths"),
        (([1], [4], []), {}, "seeds"),
        (([1], [4], [-1]), {}, "seeds"),
        (([1], [4], [0]), {"box": (1, 0, 0, 1)}, "box"),
        (([1], [4], [0]), {"box": (0, 1, 0)}, "box"),
        (([1], [4], [0]), {"negative_slope": -0.1}, "negative_slope"),
        (([1], [4], [0]), {"negative_slope": float("nan")}, "negative_slope"),
        (([1], [4], [0]), {"init": "xavier"}, "init"),
        (([1], [4], [0]), {"segment": ((0, 0), (5, 0))}, "inside the box"),
        (([1], [4], [0.5]), {}, "The 'seeds' parameter of region_counts"),
        (([1], [4], [0]), {"segment": ((1, 1), (1, 1))}, "distinct"),
        (([1], [4], [0]), {"segment": (0, 0, 1, 1)}, "two finite points"),
    ],
)
def test_bad_arguments_raise_value_error(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        region_counts(*args, progress=False, **kwargs)


def test_bad_summary_and_slope_arguments_raise_value_error():
    t = region_counts([1], [3], seeds=[0], progress=False)
    with pytest.raises(ValueError, match="no column"):
        summarize(t, "volume", by=["depth"])
    with pytest.raises(ValueError, match="positive"):
        loglog_slope([1, 2], [0, 1])
    with pytest.raises(ValueError, match="same length"):
        loglog_slope([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="two different"):
        loglog_slope([2, 2], [1, 3])
    with pytest.raises(ValueError, match="depth"):
        counting_network(0, 4, seed=0)
    with pytest.raises(ValueError, match="init"):
        counting_network(1, 4, seed=0, init="orthogonal")
