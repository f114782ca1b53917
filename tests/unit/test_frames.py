"""Unit tests of bnlib.frames (chapters 1 and 2): every frame draws every state its player shows."""

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
from bnlib import geometry as g  # noqa: E402
from bnlib.frames import BN_EXPLORER_BOX, bn_explorer_frame, explorer_data  # noqa: E402
from _oracles import TorchOracle, cluster, uniform  # noqa: E402



@pytest.mark.parametrize("params", [
    dict(batchnorm=False), dict(), dict(beta=1.5, gamma=-0.5), dict(layer=4, unit=5),
    dict(center_x=-2.0, center_y=3.0, stretch=0.3), dict(batchnorm=False, layer=3, stretch=2.5),
    dict(legend=False, seed=3),
])
def test_bn_explorer_frame_draws(params):
    fig, ax = plt.subplots()
    part = bn_explorer_frame(ax, **params)
    assert part.box == BN_EXPLORER_BOX and ax.get_title()
    plt.close(fig)


def test_bn_explorer_frame_beta_moves_the_unit_by_data_spread_units():
    X = explorer_data()
    fig, ax = plt.subplots()
    part = bn_explorer_frame(ax, layer=1, unit=2, beta=1.0, gamma=2.0)
    plt.close(fig)
    W = part.layers[0].W[2]
    sd = (X @ W + part.layers[0].b[2]) / np.linalg.norm(W)  # signed distance to the unit's line
    proj = X @ W / np.linalg.norm(W)
    assert sd.mean() == pytest.approx(0.5 * proj.std(), rel=1e-3)  # beta/gamma = 0.5 spreads


def test_bn_explorer_frame_bad_input():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="layer"):
        bn_explorer_frame(ax, layer=5)
    with pytest.raises(ValueError, match="unit"):
        bn_explorer_frame(ax, unit=6)
    with pytest.raises(ValueError, match="gamma"):
        bn_explorer_frame(ax, gamma=0.0)
    with pytest.raises(ValueError, match="stretch"):
        bn_explorer_frame(ax, stretch=-1.0)
    plt.close(fig)


@pytest.mark.parametrize("params", bnlib.frames.BN_EXPLORER_FRAMES, ids=lambda p: str(sorted(p.items())))
def test_bn_explorer_frame_draws_every_state_of_its_player(params):
    fig, ax = plt.subplots()
    part = bnlib.frames.bn_explorer_frame(ax, **params)
    assert part.n_regions > 1 and ax.get_title() and len(ax.collections) >= 1
    plt.close(fig)


@pytest.mark.parametrize("params", bnlib.frames.RANDOM_PARTITION_FRAMES, ids=lambda p: str(sorted(p.items())))
def test_random_partition_frame_draws_every_state_of_its_player(params):
    fig, ax = plt.subplots()
    part = bnlib.frames.random_partition_frame(ax, **params)
    shown = part.depth if params["layer"] is None else min(params["layer"], part.depth)
    assert part.depth == params["depth"]
    assert f"{len(part.regions(shown))} regions" in ax.get_title()
    plt.close(fig)
