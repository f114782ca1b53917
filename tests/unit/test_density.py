"""Unit tests of bnlib.density: the data's ellipse and exact region density near it.

Oracles: Monte Carlo sampling, the exact partition's own areas and locate; no expected value is copied
from bnlib.density.
"""

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
from bnlib import density as g  # noqa: E402
from bnlib.frames import BN_EXPLORER_BOX, bn_explorer_frame, explorer_data  # noqa: E402
from _oracles import TorchOracle, cluster, uniform  # noqa: E402



def test_ellipse_from_data_coverage_area_and_samples():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40000, 2)) @ np.array([[1.0, 0.4], [0.0, 0.3]]) + [2, -1]
    E = g.Ellipse.from_data(X, coverage=0.8)
    assert E.contains(X).mean() == pytest.approx(0.8, abs=0.01)
    assert E.q**2 == pytest.approx(stats.chi2.ppf(0.8, 2))
    S = E.sample(20000, seed=1)
    assert E.contains(S).all()
    # uniform: the fraction in the inner half-scale ellipse is 1/4
    inner = g.Ellipse(E.center, E.cov, E.q / 2)
    assert inner.contains(S).mean() == pytest.approx(0.25, abs=0.01)
    # area against Monte Carlo in the bounding box
    lo, hi = E.polygon().min(0), E.polygon().max(0)
    U = rng.uniform(lo, hi, size=(200000, 2))
    assert E.area == pytest.approx(E.contains(U).mean() * np.prod(hi - lo), rel=0.01)


def test_disk_polygon_intersection_special_cases():
    def areas(polys):
        V, nxt, starts, _ = g._ragged([np.asarray(p, float) for p in polys])
        return g._disk_polygon_areas(V, nxt, starts)

    big = [[-2, -2], [2, -2], [2, 2], [-2, 2]]
    half = [[0, -2], [2, -2], [2, 2], [0, 2]]
    small = [[-0.3, -0.2], [0.4, -0.1], [0.1, 0.5]]
    away = [[3, 3], [4, 3], [4, 4]]
    got = areas([big, half, small, away])
    tri = 0.5 * abs((0.4 + 0.3) * (0.5 + 0.2) - (-0.1 + 0.2) * (0.1 + 0.3))
    assert np.allclose(got, [np.pi, np.pi / 2, tri, 0.0])


def test_region_density_against_locate_on_sampled_points():
    X = cluster(200, seed=6)
    net = bnlib.MLP([2, 6, 6], batchnorm=True, seed=6)
    box = (-3, 6, -3, 5)
    part = bnlib.partition(net, box, batch=X)
    E = g.Ellipse.from_data(X)
    d = g.region_density(part, E)
    P = uniform(box, 400000, seed=2)
    cell = part.locate(P)
    inside = E.contains(P)
    # each region's share inside the ellipse, by sampling (regions hit often enough)
    hits = np.bincount(cell, minlength=part.n_regions)
    hits_in = np.bincount(cell[inside], minlength=part.n_regions)
    often = hits >= 2000
    share = hits_in[often] / hits[often]
    # small regions: wholly inside when all their vertices are (the ellipse is convex)
    V = part.polygons
    whole = np.array([E.contains(v).all() for v in V])
    fraction = np.where(often, 0.0, whole.astype(float))
    fraction[often] = share
    certain = often | whole
    tol = 4 * np.sqrt(0.25 / np.maximum(hits, 1)) + 1e-12
    # the shared count inside must match the sampled shares (regions too small to sample and
    # not wholly inside are left open: they may add up to their number)
    assert d["inside"] + d["outside"] == pytest.approx(part.n_regions)
    assert d["area_inside"] == pytest.approx(inside.mean() * 72.0, rel=0.01)
    assert d["density_inside"] * d["area_inside"] == pytest.approx(d["inside"])
    n_certain_inside = fraction[certain].sum()
    slack = tol[often].sum()
    assert n_certain_inside - slack <= d["inside"] <= n_certain_inside + slack + (~certain).sum()
    assert d["meeting"] >= len(np.unique(cell[inside]))
    assert d["meeting"] >= whole.sum()


def test_region_density_share_of_each_region():
    """Region by region, the exact share inside the ellipse against sampling inside the region."""
    X = cluster(200, seed=8)
    part = bnlib.partition(bnlib.MLP([2, 6, 6], batchnorm=True, seed=8), (-3, 6, -3, 5), batch=X)
    E = g.Ellipse.from_data(X)
    V, nxt, starts, owner = g._ragged(part.polygons)
    exact = g._disk_polygon_areas(E.whiten(V), nxt, starts) * E.q**2 * np.sqrt(np.linalg.det(E.cov))
    rng = np.random.default_rng(0)
    for r in np.argsort(part.areas())[::-1][:15]:   # the 15 largest regions
        poly = part.polygons[r]
        lo, hi = poly.min(0), poly.max(0)
        S = rng.uniform(lo, hi, size=(40000, 2))
        mine = part.locate(S) == r
        mc = (mine & E.contains(S)).mean() * np.prod(hi - lo)
        assert exact[r] == pytest.approx(mc, abs=4 * np.sqrt(mine.mean() / 40000) * np.prod(hi - lo) + 1e-9)


def test_region_density_layer_and_bad_input():
    X = cluster(100, seed=1)
    part = bnlib.partition(bnlib.MLP([2, 4, 4], seed=1), (-3, 6, -3, 5))
    E = g.Ellipse.from_data(X)
    assert g.region_density(part, E, layer=1)["regions"] == len(part.regions(1))
    with pytest.raises(ValueError, match="Partition"):
        g.region_density("no", E)
    with pytest.raises(ValueError, match="Ellipse"):
        g.region_density(part, (0, 0, 1))
    with pytest.raises(ValueError, match="positive-definite"):
        g.Ellipse(np.zeros(2), np.diag([1.0, -1.0]), 1.0)
    with pytest.raises(ValueError, match="coverage"):
        g.Ellipse.from_data(X, coverage=1.5)
