"""bnlib.initialization: BN folding against torch's own BatchNorm1d, LSUV, the linear probe."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bnlib import MLP, data
from bnlib.initialization import features, fold_batchnorm, linear_probe, lsuv


@pytest.fixture(scope="module")
def far_data():
    # data far from the origin and anisotropic: BN has something to correct
    X, y = data.spirals(128, shift=(4.0, -3.0), scale=1.5, seed=0)
    return X, y


@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_folding_matches_torch_batchnorm_in_training_mode(far_data, slope):
    X, _ = far_data
    net = MLP([2, 12, 12, 12], batchnorm=True, negative_slope=slope, n_classes=3, seed=5).double()
    with torch.no_grad():  # non-trivial gamma and beta, as after training
        for m in net:
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-1.0, 1.0)
    before = copy.deepcopy(net.state_dict())
    plain = fold_batchnorm(net, X)
    # the BN network, its running statistics included, is untouched by the folding
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        expected = net.train()(Xt)  # torch's BN: batch mean and biased variance
        got = plain(Xt)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain)
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)


def test_folding_in_float32_and_at_new_points(far_data):
    X, _ = far_data
    net = MLP([2, 16, 16], batchnorm=True, n_classes=1, seed=2)
    plain = fold_batchnorm(net, X)
    assert plain[0].weight.dtype == torch.float32
    with torch.no_grad():
        gap = (plain(torch.tensor(X).float()) - net.train()(torch.tensor(X).float())).abs().max()
    assert float(gap) < 1e-5
    # away from the batch, the folded net is the BN net with statistics frozen on X (eval mode
    # with running statistics set to the batch's, unbiased variance excluded)
    frozen = copy.deepcopy(net).double()
    z = torch.as_tensor(X)
    with torch.no_grad():
        for m in frozen:
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(z.mean(0))
                m.running_var.copy_(z.var(0, unbiased=False))
            z = m.eval()(z)
    new = np.random.default_rng(1).normal(size=(50, 2)) * 3
    with torch.no_grad():
        a = frozen.eval()(torch.as_tensor(new))
        b = fold_batchnorm(net.double(), X)(torch.as_tensor(new))
    assert torch.allclose(a, b, atol=1e-9)


def test_folding_without_bn_is_a_copy(far_data):
    X, _ = far_data
    net = MLP([2, 8, 8], n_classes=1, seed=0)
    plain = fold_batchnorm(net, X)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), plain.parameters()))
    assert plain[0] is not net[0]


def test_lsuv_gives_unit_variance_preactivations(far_data):
    X, _ = far_data
    net = lsuv(MLP([2, 16, 16, 16], n_classes=3, seed=1), X, seed=1, tol=1e-3)
    z = torch.tensor(X).float()
    variances = []
    with torch.no_grad():
        for m in net:
            z = m(z)
            if isinstance(m, nn.Linear):
                variances.append(float(z.var(unbiased=False)))
    assert len(variances) == 4
    assert np.allclose(variances, 1.0, atol=2e-3)
    # orthonormal start: the rescaled rows of one layer all have the same norm
    norms = net[2].weight.norm(dim=1)
    assert torch.allclose(norms, norms[0].expand_as(norms), rtol=1e-4)


def test_lsuv_is_seeded_and_leaves_model_alone(far_data):
    X, _ = far_data
    net = MLP([2, 8, 8], n_classes=1, seed=0)
    w = net[0].weight.clone()
    a, b = lsuv(net, X, seed=3), lsuv(net, X, seed=3)
    assert torch.equal(net[0].weight, w)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, lsuv(net, X, seed=4)[0].weight)


def test_features_and_probe(far_data):
    X, y = far_data
    net = MLP([2, 8, 8], batchnorm=True, n_classes=1, seed=0)
    F = features(net, X)
    assert F.shape == (len(X), 8)
    # BN features from the training batch, at initialization: the last BN output has mean 0
    with torch.no_grad():
        h = net.train()[:-2](torch.tensor(X).float())  # up to the last BN
    assert np.allclose(F, torch.nn.functional.leaky_relu(h, 0.1).numpy(), atol=1e-5)
    r1 = linear_probe(net, X, y, X, y, seed=0)
    r2 = linear_probe(net, X, y, X, y, seed=0)
    assert r1 == r2 and 0.5 <= r1["train_accuracy"] <= 1.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, y: fold_batchnorm("not a model", X), "torch.nn.Module"),
        (lambda X, y: fold_batchnorm(MLP([2, 4], batchnorm=True), X[:1]), "at least 2"),
        (lambda X, y: fold_batchnorm(MLP([3, 4], batchnorm=True), X), "shape"),
        (lambda X, y: fold_batchnorm(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), X), "unsupported"),
        (lambda X, y: lsuv(MLP([2, 4], batchnorm=True), X), "without BatchNorm"),
        (lambda X, y: lsuv(MLP([2, 4]), X, tol=0), "tol"),
        (lambda X, y: lsuv(MLP([2, 4]), np.full((10, 2), np.nan)), "NaN"),
        (lambda X, y: linear_probe(MLP([2, 4], n_classes=1), X, y, X, y, C=0), "C must"),
        (lambda X, y: linear_probe(MLP([2, 4], n_classes=1), X, y[:5], X, y), "matching"),
        (lambda X, y: features(nn.Sequential(nn.Linear(2, 1)), X), "no hidden layer"),
    ],
)
def test_bad_arguments_raise(far_data, call, match):
    X, y = far_data
    with pytest.raises(ValueError, match=match):
        call(X, y)


def test_folding_accepts_bn_anywhere_a_plain_affine_map_is_read():
    # BN before the first Linear (on the inputs) folds too: the result is torch's training mode
    X = np.random.default_rng(0).normal(size=(30, 2)) * 3 + 1
    net = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.5), nn.Linear(3, 1)).double()
    plain = fold_batchnorm(net, X)
    with torch.no_grad():
        ref = nn.Sequential(net[0].train(), net[1], net[2], net[4])(torch.tensor(X))
        assert torch.allclose(plain(torch.tensor(X)), ref, atol=1e-10)


def _bn_net_with_trained_affine(seed=5):
    net = MLP([2, 12, 12, 12], batchnorm=True, n_classes=3, seed=seed).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # gamma and beta away from 1 and 0, as after training
        for m in net:
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 2.0, generator=gen)
                m.bias.uniform_(-1.0, 1.0, generator=gen)
    return net


def _by_hand(net, X, parts, frozen_on=None):
    """The network's forward pass written out in torch, BN replaced by its centring or its scaling
    alone; statistics from the current batch, or (``frozen_on``) from that batch's pass."""
    z = torch.as_tensor(X)
    ref = None if frozen_on is None else torch.as_tensor(frozen_on)
    for m in net:
        if isinstance(m, nn.BatchNorm1d):
            src = z if ref is None else ref
            mean, var = src.mean(0), src.var(0, unbiased=False)
            if parts == "center":
                f = lambda u: m.weight * (u - mean) + m.bias  # noqa: E731
            else:
                f = lambda u: m.weight * u / torch.sqrt(var + m.eps) + m.bias  # noqa: E731
            z = f(z)
            ref = None if ref is None else f(ref)
        else:
            z = m(z)
            ref = None if ref is None else m(ref)
    return z


@pytest.mark.parametrize("parts", ["center", "scale"])
def test_partial_folding_matches_a_forward_pass_written_out(far_data, parts):
    X, _ = far_data
    net = _bn_net_with_trained_affine()
    before = copy.deepcopy(net.state_dict())
    plain = fold_batchnorm(net, X, parts=parts)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain)
    with torch.no_grad():
        assert torch.allclose(plain(torch.as_tensor(X)), _by_hand(net, X, parts), atol=1e-9, rtol=0)
        # away from the batch: the same map with the statistics frozen on X
        new = np.random.default_rng(1).normal(size=(50, 2)) * 3
        assert torch.allclose(plain(torch.as_tensor(new)), _by_hand(net, new, parts, frozen_on=X), atol=1e-9)


@pytest.mark.parametrize("parts", ["center", "scale"])
def test_partial_folding_matches_torch_batchnorm_set_to_do_only_that(far_data, parts):
    # the oracle: torch's own BatchNorm1d in training mode, at initialization (gamma 1, beta 0), with
    # gamma and beta set layer by layer so that it only centres (gamma = sqrt(var + eps)) or only
    # scales (beta = mean / sqrt(var + eps))
    X, _ = far_data
    net = MLP([2, 12, 12, 12], batchnorm=True, n_classes=1, seed=2)
    oracle = copy.deepcopy(net).train()
    Xt = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        for i, m in enumerate(oracle):
            if isinstance(m, nn.BatchNorm1d):
                u = oracle[:i](Xt)
                mean, var = u.mean(0), u.var(0, unbiased=False)
                if parts == "center":
                    m.weight.copy_(torch.sqrt(var + m.eps))
                else:
                    m.bias.copy_(mean / torch.sqrt(var + m.eps))
        expected = oracle(Xt)
        got = fold_batchnorm(net, X, parts=parts)(Xt)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
    # and the parts differ from each other and from the whole BN
    with torch.no_grad():
        whole = fold_batchnorm(net, X)(Xt)
        other = fold_batchnorm(net, X, parts="scale" if parts == "center" else "center")(Xt)
    assert not torch.allclose(got, whole, atol=1e-3) and not torch.allclose(got, other, atol=1e-3)


def test_centring_moves_every_first_layer_boundary_onto_the_data_and_scaling_does_not(far_data):
    X, _ = far_data
    net = MLP([2, 16, 16], batchnorm=True, n_classes=1, seed=0)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        raw = net[0](Xt)
        centred = fold_batchnorm(net, X, parts="center")[0](Xt)
        scaled = fold_batchnorm(net, X, parts="scale")[0](Xt)
    assert torch.allclose(centred.mean(0), torch.zeros(16), atol=1e-5)  # boundary through the centroid
    assert torch.allclose(centred.std(0), raw.std(0), rtol=1e-4)  # spread kept
    assert torch.allclose(scaled.var(0, unbiased=False), torch.ones(16), atol=1e-3)  # unit spread
    assert torch.equal(torch.sign(scaled), torch.sign(raw))  # same side of the same boundary


def test_lsuv_per_unit_gives_every_unit_unit_variance(far_data):
    X, _ = far_data
    far = X + np.array([4.0, 4.0])  # uncentred: unit means differ far more than units vary
    net = lsuv(MLP([2, 16, 16, 16], n_classes=3, seed=1), far, seed=1, per_unit=True, tol=1e-3)
    z = torch.tensor(far).float()
    with torch.no_grad():
        for m in net:
            z = m(z)
            if isinstance(m, nn.Linear):
                assert torch.allclose(z.var(0, unbiased=False), torch.ones(z.shape[1]), atol=2e-3)


def test_pooled_variance_is_within_unit_variance_plus_spread_of_unit_means(far_data):
    # why published LSUV and the per-unit variant differ on uncentred data
    X, _ = far_data
    far = X + np.array([4.0, 4.0])
    net = lsuv(MLP([2, 16, 16], n_classes=1, seed=0), far, seed=0, tol=1e-3)
    with torch.no_grad():
        h = net[0](torch.tensor(far).float()).double()
    pooled = float(h.var(unbiased=False))
    within = float(h.var(0, unbiased=False).mean())
    between = float(h.mean(0).var(unbiased=False))
    assert pooled == pytest.approx(within + between, rel=1e-6)
    assert pooled == pytest.approx(1.0, abs=2e-3) and within < 0.5 * between


def _with_a_dead_unit():
    net = MLP([2, 3], n_classes=1, seed=0)
    with torch.no_grad():
        net[0].weight[1].zero_()  # unit 1 is its bias on every input: no variance to rescale
    return net


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X: fold_batchnorm(MLP([2, 4], batchnorm=True), X, parts="mean"), "The 'parts' parameter of fold_batchnorm"),
        (lambda X: fold_batchnorm(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3, affine=False), nn.ReLU()), X,
                                  parts="center"), "affine=True"),
        (lambda X: lsuv(_with_a_dead_unit(), X, orthonormal=False, per_unit=True), "a unit is constant"),
    ],
)
def test_bad_partial_arguments_raise(far_data, call, match):
    X, _ = far_data
    with pytest.raises(ValueError, match=match):
        call(X)


def test_folded_network_has_the_partition_of_the_bn_network_with_batch_statistics():
    # moved from chapter 3: the folded network cuts the window exactly as the BN network does with the
    # statistics of X (bnlib.partition reads BN itself), and gives every point the same activation pattern
    from bnlib import partition

    X, _ = data.spirals(200, turns=1.0, noise=0.03, shift=(4.0, 4.0), seed=0)
    X_new, _ = data.spirals(200, turns=1.0, noise=0.03, shift=(4.0, 4.0), seed=1)
    net = _bn_net_with_trained_affine(seed=3)
    box = (2.5, 5.5, 2.5, 5.5)
    part_bn, part_folded = partition(net, box, batch=X), partition(fold_batchnorm(net, X), box)
    assert part_bn.n_regions == part_folded.n_regions
    assert np.array_equal(part_bn.activation_patterns(X_new), part_folded.activation_patterns(X_new))
