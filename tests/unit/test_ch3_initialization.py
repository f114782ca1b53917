"""bnlib.experiments.ch3_initialization: the arms, the seeded runner, its summaries and snapshots."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bnlib import MLP, data
from bnlib.experiments.ch3_initialization import (ARMS, epochs_to_reach, initial_model, learning_curves,
                                                  run_arms, snapshots)
from bnlib.initialization import fold_batchnorm, lsuv
from bnlib.stats import mean_interval


@pytest.fixture(scope="module")
def far_data():
    # data far from the origin and anisotropic: BN has something to correct
    X, y = data.spirals(128, shift=(4.0, -3.0), scale=1.5, seed=0)
    return X, y


def test_same_seed_identical_histories(far_data):
    X, y = far_data
    kw = dict(widths=[2, 8, 8], n_classes=1, seeds=[0, 1], epochs=3, batch_size=16, progress=False,
              X_test=X, y_test=y)
    t1, t2 = run_arms(X, y, **kw), run_arms(X, y, **kw)
    assert set(t1) == {"arm", "seed", "epoch", "train_loss", "train_accuracy", "test_accuracy"}
    for k in t1:
        assert np.array_equal(t1[k], t2[k])
    assert len(t1["arm"]) == len(ARMS) * 2 * 4
    # the plain and BN arms start from the same Linear weights
    assert torch.equal(initial_model("plain", [2, 8], 1, X, seed=0)[0].weight,
                       initial_model("bn", [2, 8], 1, X, seed=0)[0].weight)


def test_snapshots_are_the_states_of_the_run(far_data):
    X, y = far_data
    kw = dict(widths=[2, 8, 8], n_classes=1, seed=0, batch_size=16)
    snaps = snapshots("bn_init", X, y, at=[0, 2], **kw)
    start = initial_model("bn_init", [2, 8, 8], 1, X, seed=0)
    assert all(torch.equal(snaps[0][k], v) for k, v in start.state_dict().items())
    t = run_arms(X, y, widths=[2, 8, 8], n_classes=1, seeds=[0], arms=["bn_init"], epochs=2,
                 batch_size=16, progress=False)
    net = initial_model("bn_init", [2, 8, 8], 1, X, seed=0)
    net.load_state_dict(snaps[1])
    with torch.no_grad():  # the training loss the run recorded after epoch 2 (eval mode)
        out = net.eval()(torch.tensor(X).float())[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out, torch.as_tensor(y).float())
    assert float(loss) == pytest.approx(t["train_loss"][-1], abs=1e-6)


def test_summaries():
    table = {
        "arm": np.array(["a"] * 4 + ["b"] * 4),
        "seed": np.array([0, 0, 1, 1] * 2),
        "epoch": np.array([0, 1] * 4),
        "acc": np.array([0.1, 0.5, 0.2, 0.9, 0.1, 0.2, 0.3, 0.4]),
    }
    curves = learning_curves(table, "acc")
    assert np.allclose(curves["a"]["mean"], [0.15, 0.7])
    assert np.all(curves["b"]["lo"] <= curves["b"]["mean"])
    first = epochs_to_reach(table, "acc", 0.8)
    assert first["arm"].tolist() == ["a", "a", "b", "b"]
    assert first["epochs"][1] == 1 and np.isnan(first["epochs"][0]) and np.isnan(first["epochs"][2:]).all()
    m, lo, hi = mean_interval([1.0, 3.0])
    assert m == 2.0 and lo < 2.0 < hi


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, y: initial_model("dropout", [2, 4], 1, X, seed=0), "The 'arm' parameter of initial_model"),
        (lambda X, y: run_arms(X, y, widths=[2, 4], n_classes=1, seeds=[], progress=False), "seeds"),
        (lambda X, y: run_arms(X, y, widths=[2, 4], n_classes=1, seeds=[0], arms=["x"]), "The 'arms' parameter of run_arms"),
        (lambda X, y: run_arms(X, y, widths=[2, 4], n_classes=1, seeds=[0], epochs=-1, progress=False), "The 'epochs' parameter of fit"),
        (lambda X, y: learning_curves({"arm": np.array(["a"])}, "loss"), "metric"),
        (lambda X, y: mean_interval([1.0]), "at least 2"),
        (lambda X, y: snapshots("bn", X, y, widths=[2, 4], n_classes=1, seed=0, at=[-1]), "The 'at' parameter of snapshots"),
    ],
)
def test_bad_arguments_raise(far_data, call, match):
    X, y = far_data
    with pytest.raises(ValueError, match=match):
        call(X, y)
