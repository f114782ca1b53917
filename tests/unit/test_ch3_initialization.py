"""bnlib.experiments.ch3_initialization: the arms, the seeded runner, its summaries and snapshots."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import bnlib
from bnlib import MLP, data
from bnlib.experiments.ch3_initialization import (ARMS, compare, curves_by_seed, ema_statistics,
                                                  epochs_to_reach, holm_verdicts,
                                                  initial_model, learning_curves, precise_arms, run_arms,
                                                  snapshots, standardizer, styles)
from bnlib.initialization import fold_batchnorm, lsuv
from bnlib.nets import precise_batchnorm
from bnlib.stats import holm, mean_interval, paired_difference
from bnlib.train import accuracy, fit


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
    metrics = {"train_loss", "train_accuracy", "test_accuracy"}
    assert set(t1) == {"arm", "seed", "epoch", *metrics, *(f"{m}_precise" for m in metrics)}
    for k in t1:
        assert np.array_equal(t1[k], t2[k], equal_nan=k != "arm")
    # only the BN arm (kept in training) has a second, precise-statistics evaluation
    has_precise = np.isfinite(t1["train_loss_precise"])
    assert set(t1["arm"][has_precise].tolist()) == {"bn"}
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


def test_precise_columns_are_the_precise_batchnorm_of_the_trained_network(far_data):
    X, y = far_data
    X_test, y_test = data.spirals(100, shift=(4.0, -3.0), scale=1.5, seed=1)
    kw = dict(widths=[2, 8, 8], n_classes=1, batch_size=16)
    t = run_arms(X, y, seeds=[0], arms=["bn"], epochs=2, progress=False, X_test=X_test, y_test=y_test, **kw)
    (state,) = snapshots("bn", X, y, seed=0, at=[2], **kw)
    net = initial_model("bn", [2, 8, 8], 1, X, seed=0)
    net.load_state_dict(state)  # running statistics included
    last = t["epoch"] == 2
    assert t["test_accuracy"][last][0] == accuracy(net, X_test, y_test)
    # precise: BN statistics recomputed by torch itself, one training-mode pass of all of X
    ref = copy.deepcopy(net).train()
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        ref(torch.as_tensor(X, dtype=torch.float32))
    assert t["test_accuracy_precise"][last][0] == accuracy(ref, X_test, y_test)
    assert t["test_accuracy_precise"][last][0] == accuracy(precise_batchnorm(net, X), X_test, y_test)


def test_precise_arms_lists_both_evaluations(far_data):
    X, y = far_data
    t = run_arms(X, y, widths=[2, 8], n_classes=1, seeds=[0, 1], arms=["plain", "bn"], epochs=2,
                 batch_size=16, progress=False, X_test=X, y_test=y)
    p = precise_arms(t)
    assert set(p) == {"arm", "seed", "epoch", "train_loss", "train_accuracy", "test_accuracy"}
    assert sorted(set(p["arm"].tolist())) == ["bn", "bn_precise", "plain"]
    for arm, col in [("bn", "test_accuracy"), ("bn_precise", "test_accuracy_precise"), ("plain", "test_accuracy")]:
        source = "bn" if arm.startswith("bn") else arm
        assert np.array_equal(p["test_accuracy"][p["arm"] == arm], t[col][t["arm"] == source])
        assert np.array_equal(p["seed"][p["arm"] == arm], t["seed"][t["arm"] == source])
    with pytest.raises(ValueError, match="no column 'train_loss_precise'"):
        precise_arms({k: v for k, v in t.items() if k != "train_loss_precise"})


def test_standardised_arm_trains_on_standardised_inputs_from_the_plain_weights(far_data):
    X, y = far_data
    net = initial_model("plain_std", [2, 8, 8], 1, X, seed=3)
    plain = initial_model("plain", [2, 8, 8], 1, X, seed=3)
    with torch.no_grad():
        Z = net[0](torch.as_tensor(X, dtype=torch.float32))
    assert torch.allclose(Z.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(Z.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    assert all(torch.equal(p, q) for p, q in zip(net[1:].parameters(), plain.parameters()))
    frozen = copy.deepcopy(net[0].state_dict())
    fit(net, X, y, epochs=2, batch_size=16, progress=False)
    assert all(torch.equal(frozen[k], v) for k, v in net[0].state_dict().items())  # training leaves it alone
    assert not torch.equal(net[1].weight, plain[0].weight)
    # a constant coordinate (a blank pixel) is only centred, never divided by 0
    C = np.c_[X, np.full(len(X), 2.0)]
    with torch.no_grad():
        out = standardizer(C)(torch.as_tensor(C, dtype=torch.float32))
    assert torch.isfinite(out).all() and torch.equal(out[:, 2], torch.zeros(len(X)))
    # bnlib reads the frozen map as the affine map it is: the exact partition predicts as the network does
    part = bnlib.partition(net, (X[:, 0].min(), X[:, 0].max(), X[:, 1].min(), X[:, 1].max()))
    with torch.no_grad():
        out = (net(torch.as_tensor(X, dtype=torch.float32))[:, 0] > 0).long().numpy()
    assert np.array_equal(part.predict(X), out)


def test_data_dependent_arms_are_their_initializations(far_data):
    X, _ = far_data
    bn = MLP([2, 8, 8], batchnorm=True, n_classes=1, seed=4)
    plain = MLP([2, 8, 8], n_classes=1, seed=4)
    expected = {"bn_init": fold_batchnorm(bn, X), "bn_center": fold_batchnorm(bn, X, parts="center"),
                "bn_scale": fold_batchnorm(bn, X, parts="scale"), "lsuv": lsuv(plain, X, seed=4),
                "lsuv_unit": lsuv(plain, X, seed=4, per_unit=True)}
    for arm, ref in expected.items():
        got = initial_model(arm, [2, 8, 8], 1, X, seed=4)
        assert all(torch.equal(p, q) for p, q in zip(got.parameters(), ref.parameters())), arm


def test_compare_and_holm_verdicts():
    rng = np.random.default_rng(0)
    seeds = np.arange(10)
    table = {"arm": np.repeat(["a", "b", "c"], 20), "seed": np.tile(np.repeat(seeds, 2), 3),
             "epoch": np.tile([1, 2], 30), "acc": rng.uniform(0.6, 0.7, 60)}
    table["acc"][table["arm"] == "a"] += 0.2  # a is far ahead of b and c
    pairs = [("a", "b", 1), ("a", "c", 2), ("b", "c", 2)]
    family = compare(table, pairs, metric="acc")
    for (arm, against, epoch), row in zip(pairs, family.itertuples()):
        sel = table["epoch"] == epoch
        ref = paired_difference({k: v[sel] for k, v in table.items()}, "acc", arm, against).iloc[0]
        assert (row.arm, row.against, row.epoch, row.n) == (arm, against, epoch, 10)
        assert (row.mean, row.lo, row.hi, row.p) == (ref["mean"], ref["lo"], ref["hi"], ref["p"])
    out = holm_verdicts(family, margin=0.5)
    assert np.array_equal(out["p_holm"], holm(family["p"]))
    assert out["verdict"].tolist() == ["positive", "positive", "equivalent"]
    assert holm_verdicts(family)["verdict"].tolist()[2] == "inconclusive"  # no margin: never "no effect"
    per_row = holm_verdicts(family.assign(margin=[np.nan, np.nan, 0.001]))
    assert per_row["verdict"].tolist()[2] == "inconclusive"  # a margin the interval does not meet
    with pytest.raises(ValueError, match="no epoch 7"):
        compare(table, [("a", "b", 7)], metric="acc")


def test_every_arm_and_evaluation_has_a_distinct_style():
    arms = [*ARMS, "bn_precise"]
    s = styles(arms, bn="BN throughout, running statistics", bn_precise="BN throughout, precise statistics")
    assert s["bn"]["label"] == "BN throughout, running statistics"
    assert len({(v["color"], v["linestyle"]) for v in s.values()}) == len(arms)
    assert len({v["label"] for v in s.values()}) == len(arms)
    with pytest.raises(ValueError, match="The 'arms' parameter of arm_styles"):
        styles(["nope"])


def test_curves_by_seed_keeps_every_seed(far_data):
    X, y = far_data
    t = run_arms(X, y, widths=[2, 8], n_classes=1, seeds=[0, 3], arms=["plain", "bn"], epochs=2,
                 batch_size=16, progress=False)
    c = curves_by_seed(t, "train_loss")
    assert list(c) == ["plain", "bn"]
    for arm, curve in c.items():
        assert curve["seed"].tolist() == [0, 3] and curve["epoch"].tolist() == [0, 1, 2]
        for i, seed in enumerate(curve["seed"]):
            sel = (t["arm"] == arm) & (t["seed"] == seed)
            assert np.array_equal(curve["values"][i], t["train_loss"][sel])


def test_ema_statistics_is_the_running_average_of_batch_statistics_with_frozen_weights(far_data):
    X, _ = far_data
    net = MLP([2, 8, 8], batchnorm=True, n_classes=1, seed=1)
    got = ema_statistics(net, X, batch_size=16, passes=2, seed=5)
    assert not got.training and all(torch.equal(p, q) for p, q in zip(got.parameters(), net.parameters()))
    # the average written out: the same batches, each BN input by the frozen network in training mode
    gen = torch.Generator().manual_seed(5)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    mean, var = [torch.zeros(8), torch.zeros(8)], [torch.ones(8), torch.ones(8)]
    ref = copy.deepcopy(net).train()
    with torch.no_grad():
        for _ in range(2):
            order = torch.randperm(len(X), generator=gen)
            for start in range(0, len(X), 16):
                xb = Xt[order[start:start + 16]]
                inputs = [ref[:1](xb), ref[:4](xb)]  # the inputs of the two BN layers
                for i, u in enumerate(inputs):
                    mean[i] = 0.9 * mean[i] + 0.1 * u.mean(0)
                    var[i] = 0.9 * var[i] + 0.1 * u.var(0, unbiased=True)
    for i, m in enumerate([got[1], got[4]]):
        assert torch.allclose(m.running_mean, mean[i], atol=1e-5)
        assert torch.allclose(m.running_var, var[i], atol=1e-5)
