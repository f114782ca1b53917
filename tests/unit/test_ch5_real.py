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
        assert abs(float(m.weight.detach().std()) / np.sqrt(2 / fan_in) - 1) < 0.35
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


# ----------------------------------------------------------------------------------------
# planes through digit images


def _digits_plane(seed=0):
    Xd, Xt, yd, yt = bnlib.data.digits(seed=0)
    idx = c5.plane_triples(yt, 1, seed=seed)[0]
    return Xd, Xt, yd, yt, bnlib.Plane.through(Xt[idx].reshape(3, 1, 8, 8))


def _relu_inputs(model: nn.Module, images) -> list[np.ndarray]:
    """Torch's pre-activations of every ReLU (forward hooks), float64, one (n, units) array per ReLU."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().reshape(len(i[0]), -1).numpy()))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model(torch.as_tensor(images, dtype=torch.float64))
    finally:
        for h in hooks:
            h.remove()
    return seen


def _single_layer(seed=0, pool=False):
    """Conv(1->4) with He weights and zero biases, ReLU (then max pooling), a linear read-out."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(1, 4, 3, padding=1)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    nn.init.zeros_(conv.bias)
    layers = [conv, nn.ReLU()] + ([nn.MaxPool2d(2)] if pool else [])
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 if pool else 256, 10)).double().eval()


@pytest.mark.parametrize("pool", [False, True])
def test_plane_measures_of_one_relu_layer_in_closed_form(pool):
    # one ReLU layer: each unit is affine on the plane, so its boundary is a straight line, at distance
    # |h(a)| / |grad h| from the image a; a unit with h(a) = 0 and a non-zero gradient passes through a.
    # With zero biases a unit that sees only blank pixels at an image reads exactly 0 there.
    *_, plane = _digits_plane()
    model = _single_layer(pool=pool)
    r = 0.5
    for point, (a, b) in enumerate(plane.anchors):
        part = bnlib.partition(model, (a - r, a + r, b - r, b + r), plane=plane)
        m = c5.plane_measures(part, [(a, b)]).iloc[0]
        h0, h1, h2 = _relu_inputs(model, plane.to_input(np.array([[a, b], [a + 1, b], [a, b + 1]])))[0]
        grad = np.stack([h1 - h0, h2 - h0], 1)  # affine in the plane: exact differences
        moving = np.linalg.norm(grad, axis=1) > 1e-9
        tied = moving & (np.abs(h0) < 1e-9)
        d = np.abs(h0[moving & ~tied]) / np.linalg.norm(grad[moving & ~tied], axis=1)
        # units that share a line (at a position where two of the images are blank, every channel vanishes on the
        # line through those two) are one boundary of the partition: count the tied lines, by their direction
        normal = grad[tied] / np.linalg.norm(grad[tied], axis=1, keepdims=True)
        normal *= np.sign(normal[:, :1] + 1e-12 * normal[:, 1:])  # a line's normal up to its sign
        lines = len(np.unique(np.round(normal, 9), axis=0))
        assert m["ties"] == lines > 0
        assert np.isclose(m["distance"], d.min(), rtol=1e-9)
        assert m["regions"] == part.n_regions and np.isclose(m["area"], (2 * r) ** 2)
        if not pool:
            assert not m["on_pool"]  # no max pooling, no pooling boundary to lie on
    if not pool:  # the max pooling's boundaries are left out: the same distances with and without it
        with_pool = _single_layer(pool=True)
        part_a = bnlib.partition(model, plane=plane)
        part_b = bnlib.partition(with_pool, plane=plane)
        assert np.allclose(c5.plane_measures(part_a)["distance"], c5.plane_measures(part_b)["distance"], rtol=1e-9)


@pytest.mark.parametrize("net", c5.IMAGE_NETS)
def test_plane_measures_distance_against_forward_passes(net):
    # a deep net: the ReLU signs (torch's, at points of the plane) are those of the image on a circle
    # of radius 0.97 d around it, and some sign differs on the circle of radius 1.03 d
    *_, plane = _digits_plane(seed=1)
    model = c5.conv_network("plain", seed=2, net=net)[1:].double().eval()
    a = plane.anchors[0]
    part = bnlib.partition(model, (a[0] - 0.5, a[0] + 0.5, a[1] - 0.5, a[1] + 0.5), plane=plane)
    m = c5.plane_measures(part, [a]).iloc[0]
    d = m["distance"]
    assert m["ties"] == 0 and 0 < d < 0.5  # torch's biases: no unit reads exactly 0 at an image
    angles = np.linspace(0, 2 * np.pi, 3000, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles)], 1)
    signs = lambda ab: np.concatenate([h > 0 for h in _relu_inputs(model, plane.to_input(ab))], 1)
    centre = signs(a[None])
    assert (signs(a + 0.97 * d * circle) == centre).all()
    assert (signs(a + 1.03 * d * circle) != centre).any(1).any()


def test_plane_measures_validate():
    part = bnlib.partition(bnlib.MLP([2, 4], seed=0), (-1, 1, -1, 1))
    with pytest.raises(ValueError, match="points"):
        c5.plane_measures(part)
    m = c5.plane_measures(part, [(0.0, 0.0)])
    assert m["ties"].iloc[0] == 0 and not m["on_pool"].iloc[0] and np.isclose(m["area"].iloc[0], 4.0)


def test_plane_triples_are_three_classes_and_seeded():
    _, _, _, yt = bnlib.data.digits(seed=0)
    t = c5.plane_triples(yt, 50, seed=3)
    assert t.shape == (50, 3) and all(len(set(yt[row])) == 3 for row in t)
    assert np.array_equal(t, c5.plane_triples(yt, 50, seed=3))
    assert not np.array_equal(t, c5.plane_triples(yt, 50, seed=4))
    assert len(set(yt[t].ravel())) == 10  # 150 draws reach every class
    with pytest.raises(ValueError, match="3 classes"):
        c5.plane_triples(np.array([0, 1, 1]), 1, seed=0)


def test_resnet_arms_share_weights_and_he_arm_is_he():
    nets = {arm: c5.conv_network(arm, seed=3, net="resnet") for arm in c5.CONV_ARMS}
    convs = {arm: [m for m in net.modules() if isinstance(m, nn.Conv2d)] for arm, net in nets.items()}
    assert len(convs["plain"]) == 5
    for a, b in zip(convs["plain"], convs["bn"]):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in nets["bn"].modules()) == 5
    for m in convs["plain_he"]:
        assert torch.all(m.bias == 0) and abs(float(m.weight.detach().std()) / np.sqrt(2 / m.weight[0].numel()) - 1) < 0.35
    with pytest.raises(ValueError, match="net"):
        c5.conv_network("bn", seed=0, net="vgg")


def test_train_images_is_conv_experiment_s_training():
    Xd, Xt, yd, yt = bnlib.data.digits(seed=0)
    t = c5.conv_experiment(Xd[:150], yd[:150], Xt, yt, seeds=[1], arms=["plain_he"], epochs=2, record=[2],
                           progress=False)
    net = c5.train_images(c5.conv_network("plain_he", seed=1), Xd[:150], yd[:150], epochs=2, seed=1)
    assert not net.training and t["test_accuracy"].iloc[0] == bnlib.train.accuracy(net, Xt, yt)
    with pytest.raises(ValueError, match="one label per row"):
        c5.train_images(c5.conv_network("plain", seed=0), Xd[:10], yd[:9], epochs=1, seed=0)


def test_plane_experiment_is_paired_and_measures_what_it_trained():
    Xd, Xt, yd, yt = bnlib.data.digits(seed=0)
    t = c5.plane_experiment(Xd[:150], yd[:150], Xt, yt, seeds=[0, 1], triples=2, nets=["resnet"], epochs=1,
                            half_width=0.3, progress=False)
    # per seed: 2 triples x 3 images x (3 untrained + 4 trained arms)
    assert len(t) == 2 * 2 * 3 * 7
    assert set(t[~t["trained"]]["arm"]) == {"plain", "plain_he", "bn_precise"}
    for seed, g in t.groupby("seed"):  # every arm of a seed sees the same images
        images = {arm: tuple(h.sort_values(["triple", "point"])["image"]) for (arm, _), h in g.groupby(["arm", "trained"])}
        assert len(set(images.values())) == 1
        assert np.array_equal(np.asarray(next(iter(images.values()))).reshape(2, 3), c5.plane_triples(yt, 2, seed=seed))
    trained = c5.train_images(c5.conv_network("bn", seed=1, net="resnet"), Xd[:150], yd[:150], epochs=1, seed=1)
    for arm, model in (("bn", trained), ("bn_precise", c5.precise_conv(trained, Xd[:150]))):
        row = t[(t["seed"] == 1) & t["trained"] & (t["arm"] == arm)].iloc[0]
        assert row["test_accuracy"] == bnlib.train.accuracy(model, Xt, yt)
        plane = bnlib.Plane.through(Xt[c5.plane_triples(yt, 1, seed=1)[0]].reshape(3, 1, 8, 8))
        a, b = plane.anchors[0]
        part = bnlib.partition(model[1:], (a - 0.3, a + 0.3, b - 0.3, b + 0.3), plane=plane)
        assert row["regions"] == part.n_regions
    assert (t["distance"] > 0).all() and (t["distance"] < 0.3).all()


def test_saved_planes_run_is_complete_and_paired():
    from bnlib.experiments import saved_run

    run = saved_run("planes_full")
    t, setup = pd.DataFrame(run["planes"]), run["setup"]
    n = setup["seeds"] * setup["triples"] * 3
    assert len(t) == n * len(setup["nets"]) * 7  # 3 arms untrained, 4 evaluations trained
    _, _, _, yt = bnlib.data.digits(seed=0)
    for seed, g in t.groupby("seed"):  # every arm of a seed measured on the planes plane_triples draws
        expected = c5.plane_triples(yt, setup["triples"], seed=seed).ravel()
        for _, h in g.groupby(["net", "trained", "arm"]):
            assert np.array_equal(h.sort_values(["triple", "point"])["image"].to_numpy(), expected)
    assert (t["distance"] > 0).all() and (t["distance"] < setup["half_width"]).all()
    assert np.allclose(t["area"], (2 * setup["half_width"]) ** 2)
