"""Unit tests of bnlib.experiments.ch5_real (chapter 5's experiments).

Oracles: torch itself (its running statistics with another momentum, a LayerNorm written out, a
fresh training run for a snapshot), chapter 2's geometry written out by hand (the distance from the
centroid to a first-layer hyperplane over the RMS distance to the parallel hyperplane through the
centroid), and plain counting. No expected value is copied from the module.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import bnlib
from bnlib.experiments import ch5_real as c5
from bnlib.train import fit

X, Y = bnlib.data.moons(96, seed=0)


def test_arms_share_their_linear_weights_and_layernorm_is_torch_s():
    nets = {arm: c5.network(arm, [2, 8, 8], n_classes=1, seed=4) for arm in c5.ARMS}
    for arm in ("layernorm", "groupnorm"):
        for a, b in zip(nets["bn"], nets[arm]):
            if isinstance(a, nn.Linear):
                assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    he = nets["plain_he"][0].weight
    assert not torch.equal(he, nets["bn"][0].weight)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm)) for m in nets["plain_he"])
    # the layernorm arm's first block is (u - mean u) / sqrt(var u + eps), per sample, written out
    x = torch.randn(5, 2)
    u = nets["layernorm"][0](x)
    by_hand = (u - u.mean(1, keepdim=True)) / torch.sqrt(u.var(1, unbiased=False, keepdim=True) + 1e-5)
    assert torch.allclose(nets["layernorm"][1](u), by_hand, atol=1e-5)
    assert nets["groupnorm"][1].num_groups == 4


def test_network_validates():
    with pytest.raises(ValueError, match="groups"):
        c5.network("groupnorm", [2, 6], n_classes=1, seed=0, groups=4)
    with pytest.raises(ValueError, match="arm"):
        c5.network("instancenorm", [2, 6], n_classes=1, seed=0)


@pytest.mark.parametrize("momentum", [0.01, 0.5, None])
def test_recomputed_running_statistics_are_torch_s_for_any_momentum(momentum):
    run = c5.record_run(X, Y, widths=[2, 6, 6], n_classes=1, batch_size=8, steps=30, seed=1, at=[0, 30])
    # the oracle: torch trains the same network with that momentum (the momentum does not change the weights)
    ref = c5.network("bn", [2, 6, 6], n_classes=1, seed=1)
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.momentum = momentum
    fit(ref, X, Y, steps=30, batch_size=8, seed=1, progress=False)
    mine = run.network(30, momentum)
    for a, b in zip(mine.modules(), ref.modules()):
        if isinstance(a, nn.BatchNorm1d):
            assert torch.allclose(a.weight, b.weight) and torch.allclose(a.bias, b.bias)
            assert torch.allclose(a.running_mean, b.running_mean, atol=1e-5, rtol=1e-4)
            assert torch.allclose(a.running_var, b.running_var, atol=1e-5, rtol=1e-4)
    assert not mine.training


def test_snapshots_are_the_states_of_the_run():
    run = c5.record_run(X, Y, widths=[2, 5], n_classes=1, batch_size=16, steps=12, seed=2, at=[0, 4, 12])
    assert sorted(run.snapshots) == [0, 4, 12] and run.steps == 12
    fresh = c5.network("bn", [2, 5], n_classes=1, seed=2)
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in run.snapshots[0].items())
    fit(fresh, X, Y, steps=12, batch_size=16, seed=2, progress=False)  # the same seeded run
    assert torch.equal(run.snapshots[12]["0.weight"], fresh[0].weight.detach())
    # at step 0 the running statistics are torch's initial ones
    net0 = run.network(0, 0.1)
    assert torch.equal(net0[1].running_mean, torch.zeros(5)) and torch.equal(net0[1].running_var, torch.ones(5))
    with pytest.raises(ValueError, match="recorded step"):
        run.network(5)
    with pytest.raises(ValueError, match="'at'"):
        c5.record_run(X, Y, widths=[2, 5], n_classes=1, batch_size=16, steps=3, seed=0, at=[4])


def test_running_statistics_validate():
    with pytest.raises(ValueError, match="same shape"):
        c5.running_statistics(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="momentum"):
        c5.running_statistics(np.zeros((3, 2)), np.zeros((3, 2)), 1.5)


def test_unit_geometry_is_chapter_2_s_ruler():
    Z = np.random.default_rng(0).normal(size=(300, 2)) @ np.array([[2.0, 0.3], [0.0, 0.5]]) + [3.0, -1.0]
    net = bnlib.MLP([2, 6], batchnorm=True, seed=0)
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([1.0, -2.0, 0.5, 1.5, -0.7, 3.0]))
        net[1].bias.copy_(torch.tensor([0.0, 1.0, -0.4, 2.5, 0.3, -1.0]))
    g = c5.unit_geometry(net, Z, statistics="precise")
    ratio = np.abs(net[1].bias.detach().double().numpy() / net[1].weight.detach().double().numpy())
    v = (Z @ net[0].weight.detach().double().numpy().T).var(0)  # the biased variance BN uses
    assert np.allclose(g["offset"], ratio * np.sqrt((v + 1e-5) / v), rtol=1e-6, atol=1e-12)  # |beta / gamma|, eps aside
    # the same by hand: the distance from the centroid to the hyperplane over the RMS distance to the
    # parallel hyperplane through the centroid; and the minority side by counting
    W, c = net[0].weight.detach().double().numpy(), net[0].bias.detach().double().numpy()
    plain = bnlib.MLP([2, 6], seed=0)
    g_plain = c5.unit_geometry(plain, Z)
    for k in range(6):
        w = W[k]
        centre = Z.mean(0)
        offset = abs(w @ centre + c[k]) / np.linalg.norm(w)
        rms = np.sqrt(np.mean(((Z - centre) @ w / np.linalg.norm(w)) ** 2))
        assert np.isclose(g_plain["offset"][k], offset / rms)
        side = (Z @ w + c[k] > 0).mean()
        assert np.isclose(g_plain["minority"][k], min(side, 1 - side))
    assert (g_plain["cuts"] == (g_plain["minority"] >= c5.CUT_SHARE)).all()
    assert (g_plain["near"] == (g_plain["offset"] <= c5.NEAR_CENTROID)).all()
    with pytest.raises(ValueError, match="statistics"):
        c5.unit_geometry(net, Z, statistics="batch")


def test_mode_experiment_rows_and_their_oracles():
    box = (-2, 3, -2, 2)
    t, runs = c5.mode_experiment(X, Y, X, Y, widths=[2, 6], box=box, batch_sizes=[8, 96], momenta=[0.1, None],
                                 seeds=[0], steps=10, progress=False)
    assert len(t) == 4 and set(t["momentum"]) == {0.1, "cumulative"}
    for (_, N), rows in t.groupby(["seed", "batch_size"]):
        assert rows["accuracy_batch"].nunique() == 1 and rows["shift_batch"].nunique() == 1
        net = runs[0, N].network(10, 0.1)
        assert np.isclose(rows["accuracy_precise"].iloc[0],
                          bnlib.train.accuracy(bnlib.nets.precise_batchnorm(net, X), X, Y))
        assert np.isclose(rows[rows["momentum"] == 0.1]["accuracy_running"].iloc[0], bnlib.train.accuracy(net, X, Y))
    # a batch of all the training points: training mode is the precise statistics (biased variance)
    full = t[t["batch_size"] == 96]
    assert full["shift_batch"].iloc[0] < 0.01
    assert t[["accuracy_running", "accuracy_precise", "accuracy_batch"]].stack().between(0, 1).all()


def test_train_arms_and_ray_distances():
    models, acc = c5.train_arms(X, Y, X, Y, arms=["bn", "groupnorm"], widths=[2, 4], n_classes=1, seeds=[0, 1],
                                epochs=1, groups=2, progress=False)
    assert len(acc) == 4 and set(acc["arm"]) == {"bn", "groupnorm"}
    gn = acc[acc["arm"] == "groupnorm"]
    assert (gn["test_accuracy"] == gn["test_accuracy_precise"]).all()  # no BN: one evaluation
    points = X[:6]
    t = c5.ray_distances(models, X, points, max_distance=2.0, directions=8, progress=False)
    assert sorted(set(t["arm"])) == ["bn", "bn_precise", "groupnorm"] and len(t) == 6
    row = t[(t["arm"] == "groupnorm") & (t["seed"] == 1)]["distance"].iloc[0]
    direct = bnlib.geometry.distance_by_bisection(models["groupnorm", 1], points, 8, max_distance=2.0, n_steps=48,
                                                  seed=1)
    assert np.isclose(row, np.median(np.minimum(direct, 2.0)) / bnlib.geometry.rms_radius(X))


def test_compare_is_paired_difference():
    t = pd.DataFrame({"arm": ["a", "b"] * 4, "seed": np.repeat(range(4), 2), "v": [3.0, 1.0, 2.0, 1.5, 4.0, 0.0, 1.0, 1.0]})
    c = c5.compare(t, "v", [("a", "b"), ("b", "a")])
    assert np.isclose(c["mean"].iloc[0], np.mean([2.0, 0.5, 4.0, 0.0])) and np.isclose(c["mean"].iloc[1], -c["mean"].iloc[0])


def test_conv_arms_share_weights_and_he_arm_is_he():
    nets = {arm: c5.conv_network(arm, seed=3) for arm in c5.CONV_ARMS}
    convs = {arm: [m for m in net if isinstance(m, nn.Conv2d)] for arm, net in nets.items()}
    for a, b in zip(convs["plain"], convs["bn"]):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert any(isinstance(m, nn.BatchNorm2d) for m in nets["bn"])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in nets["plain_he"])
    for m in convs["plain_he"]:  # He normal: std sqrt(2 / fan_in), zero biases
        fan_in = m.weight[0].numel()
        assert torch.all(m.bias == 0)
        assert abs(float(m.weight.std()) / np.sqrt(2 / fan_in) - 1) < 0.35
    assert nets["bn"](torch.zeros(2, 64)).shape == (2, 10)


def test_precise_conv_is_one_training_pass_of_all_the_data():
    net = c5.conv_network("bn", seed=1)
    Xd = np.random.default_rng(0).random((40, 64))
    p = c5.precise_conv(net, Xd)
    assert not p.training and net.training  # the copy is in eval, the model untouched
    x = torch.tensor(Xd, dtype=torch.float32)
    with torch.no_grad():
        u = net[1](net[0](x))  # first convolution's pre-activations, written out
    assert torch.allclose(p[2].running_mean, u.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(p[2].running_var, u.transpose(0, 1).flatten(1).var(1, unbiased=True), rtol=1e-4)
    # in eval the precise copy reproduces training mode on the same full batch, up to torch's unbiased
    # variance in eval (a factor n / (n - 1) with n = 640 patches in the second layer)
    ref = copy.deepcopy(net).train()
    with torch.no_grad():
        assert torch.allclose(p(x), ref(x), atol=2e-3)


def test_conv_experiment_is_paired_and_reproducible():
    Xd, Xt, yd, yt = bnlib.data.digits(seed=0)
    kw = dict(seeds=[0], epochs=2, record=[1, 2], progress=False)
    a = c5.conv_experiment(Xd[:120], yd[:120], Xt[:40], yt[:40], **kw)
    b = c5.conv_experiment(Xd[:120], yd[:120], Xt[:40], yt[:40], **kw)
    pd.testing.assert_frame_equal(a, b)
    assert sorted(set(a["arm"])) == sorted(c5.CONV_ARMS) and sorted(set(a["epoch"])) == [1, 2]
    plain = a[a["arm"] != "bn"]
    assert (plain["test_accuracy"] == plain["test_accuracy_precise"]).all()
    assert a["test_accuracy"].between(0, 1).all()
