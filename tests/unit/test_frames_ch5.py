"""The frame function of chapter 5 (bnlib.frames.mode_pair_frame): every state its player and widget show.

The runs are small versions of the chapter's (a narrower network on fewer points) with the same batch
sizes and recorded steps, so that every state of MODE_PAIR_FRAMES and every control value of the live
widget can be drawn. Titles and the returned partitions are checked against independent
computations: torch's own predictions in training and in evaluation mode.
"""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import bnlib  # noqa: E402
from bnlib.experiments.ch5_real import record_run  # noqa: E402
from bnlib.frames import (MODE_PAIR_BATCH_SIZES, MODE_PAIR_FRAMES, MODE_PAIR_MOMENTA, MODE_PAIR_STEPS,  # noqa: E402
                          mode_pair_frame)

X, Y = bnlib.data.spirals(80, turns=1.0, noise=0.03, seed=0)
BOX = (-1.3, 1.3, -1.3, 1.3)


@pytest.fixture(scope="module")
def runs():
    return {N: record_run(X, Y, widths=[2, 6, 6], n_classes=1, batch_size=N, steps=max(MODE_PAIR_STEPS), seed=0,
                          at=MODE_PAIR_STEPS) for N in MODE_PAIR_BATCH_SIZES}


def test_the_frames_are_states_of_the_controls():
    assert len(MODE_PAIR_FRAMES) >= 5
    for state in MODE_PAIR_FRAMES:
        assert state["batch_size"] in MODE_PAIR_BATCH_SIZES and state["momentum"] in MODE_PAIR_MOMENTA
        assert state["step"] in MODE_PAIR_STEPS


@pytest.mark.parametrize("state", MODE_PAIR_FRAMES, ids=str)
def test_every_state_draws_both_modes(runs, state):
    fig, axes = plt.subplots(1, 2)
    out = mode_pair_frame(axes, runs=runs, X=X, y=Y, box=BOX, **state)
    net = runs[state["batch_size"]].network(state["step"], state["momentum"])
    # evaluation mode: torch's own predictions with the running statistics
    with torch.no_grad():
        torch_eval = (net(torch.as_tensor(X, dtype=torch.float32))[:, 0] > 0).numpy()
    assert (out["eval"].predict(X) == torch_eval).mean() > 0.97  # float32 rounding at the boundary
    # training mode: torch in train() on the frame's batch, then the batch's statistics applied to X
    B = X[np.random.default_rng(0).choice(len(X), state["batch_size"], replace=False)]
    layers = bnlib.affine_layers(net, batch=B)
    assert (out["train"].predict(X) == (bnlib.forward(layers, X)[:, 0] > 0)).mean() > 0.97
    assert f"N = {state['batch_size']}" in axes[0].get_title()
    assert f"momentum {state['momentum']:g}" in axes[1].get_title()
    assert np.isnan(out["shift"]) or out["shift"] >= 0
    plt.close(fig)


def test_the_live_widget_s_single_axes_is_split(runs):
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    mode_pair_frame(ax, runs=runs, X=X, y=Y, box=BOX, batch_size=4, momentum=0.5, step=0)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_live_widget_controls(runs):
    from ipywidgets import SelectionSlider

    frame = functools.partial(mode_pair_frame, runs=runs, X=X, y=Y, box=BOX)
    widget = bnlib.widgets.live(frame, batch_size=SelectionSlider(options=MODE_PAIR_BATCH_SIZES, value=16),
                                momentum=SelectionSlider(options=MODE_PAIR_MOMENTA, value=0.1),
                                step=SelectionSlider(options=MODE_PAIR_STEPS, value=300))
    assert widget is not None
    plt.close("all")


def test_mode_pair_frame_validates(runs):
    fig, axes = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="batch_size"):
        mode_pair_frame(axes[:2], runs=runs, X=X, y=Y, box=BOX, batch_size=5)
    with pytest.raises(ValueError, match="step"):
        mode_pair_frame(axes[:2], runs=runs, X=X, y=Y, box=BOX, step=7)
    with pytest.raises(ValueError, match="one or two axes"):
        mode_pair_frame(axes, runs=runs, X=X, y=Y, box=BOX)
    plt.close(fig)
