"""bnlib.experiments.ch4_noise: the arms from one set of weights, the seeded margin experiment."""

import numpy as np
import pytest
import torch
from scipy import integrate

from bnlib import MLP, data, partition
from bnlib import noise as nz
from bnlib.experiments.ch4_noise import build_network, holm_verdicts, margin_experiment, precise_arms, versus
from bnlib.geometry import rms_radius
from bnlib.nets import precise_batchnorm
from bnlib.stats import holm, paired_difference
from bnlib.train import accuracy, fit

# ----------------------------------------------------------------------------------------
# the noise model: simulation vs formula (fixed seeds; tolerances stated per test)



def test_noise_layer_without_noise_is_the_plain_network():
    X = torch.as_tensor(np.random.default_rng(0).normal(size=(32, 2)), dtype=torch.float32)
    plain = build_network("plain", [2, 6, 6], n_classes=1, seed=3).train()
    quiet = build_network("noise", [2, 6, 6], n_classes=1, seed=3, noise_batch_size=None).train()
    noisy = build_network("noise", [2, 6, 6], n_classes=1, seed=3, noise_batch_size=4)
    assert torch.equal(plain(X), quiet(X))
    assert torch.equal(plain(X), noisy.eval()(X))  # identity at evaluation
    assert not torch.allclose(plain(X), noisy.train()(X))


def test_margin_experiment_same_seed_same_result():
    X, y = data.moons(48, seed=0)
    kw = dict(widths=[2, 6], arms=("plain", "bn", "dropout", "noise"), batch_sizes=[8], seeds=[1],
              steps=20, progress=False)
    a = margin_experiment(X, y, X, y, **kw)
    b = margin_experiment(X, y, X, y, **kw)
    for key in a:
        assert np.array_equal(a[key], b[key], equal_nan=a[key].dtype.kind == "f")
    c = margin_experiment(X, y, X, y, **dict(kw, margin="local"))
    assert np.all(np.isfinite(c["margin"]))


def test_fit_by_steps_counts_steps():
    X, y = data.moons(20, seed=0)
    net = build_network("bn", [2, 4], n_classes=1, seed=0)
    fit(net, X, y, steps=7, batch_size=6, progress=False)
    assert int(net[1].num_batches_tracked) == 7  # 3 full batches per epoch, last 2 dropped


def test_noise_arm_at_full_batch_is_the_plain_network():
    # chapter 4 reads the noise arm at full batch as the plain network (BN has no noise there)
    X, y = data.moons(40, seed=0)
    t = margin_experiment(X, y, X, y, widths=[2, 6], arms=("plain", "noise"), batch_sizes=[None], seeds=[0, 1],
                          steps=15, progress=False)
    plain, noise = (t["arm"] == "plain"), (t["arm"] == "noise")
    for key in ("margin", "train_loss", "test_accuracy"):
        assert np.array_equal(t[key][plain], t[key][noise])


def test_precise_columns_evaluate_the_trained_network_with_precise_statistics():
    X, y = data.moons(48, seed=0)
    Xt, yt = data.moons(100, seed=1)
    t = margin_experiment(X, y, Xt, yt, widths=[2, 6, 6], arms=("plain", "bn"), batch_sizes=[4], seeds=[2],
                          steps=25, progress=False)
    # oracle: the same network trained by fit, evaluated as it is and with precise_batchnorm
    net = build_network("bn", [2, 6, 6], n_classes=1, seed=2)
    fit(net, X, y, steps=25, batch_size=4, lr=3e-3, seed=2, progress=False)
    precise = precise_batchnorm(net, X)
    bn = t["arm"] == "bn"
    assert t["margin"][bn][0] == np.median(nz.exact_margin(net, X, y)) / rms_radius(X)
    assert t["margin_precise"][bn][0] == np.median(nz.exact_margin(precise, X, y)) / rms_radius(X)
    assert t["test_accuracy_precise"][bn][0] == accuracy(precise, Xt, yt)
    assert t["test_accuracy"][bn][0] == accuracy(net, Xt, yt)
    plain = t["arm"] == "plain"
    for key in ("margin", "train_loss", "train_accuracy", "test_accuracy"):
        assert np.isnan(t[key + "_precise"][plain]).all()


def test_budgets_equal_epochs_and_matched_loss():
    X, y = data.moons(40, seed=0)
    kw = dict(widths=[2, 6], arms=("plain", "bn"), batch_sizes=[8, None], seeds=[0], progress=False)
    e = margin_experiment(X, y, X, y, budget="epochs", epochs=6, **kw)
    assert e["epochs"].tolist() == [6.0] * 4
    assert e["steps"].tolist() == [30, 30, 6, 6]  # 5 batches of 8 per pass over 40 points; 1 at full batch
    s = margin_experiment(X, y, X, y, budget="steps", steps=30, **kw)
    assert s["epochs"].tolist() == [6.0, 6.0, 30.0, 30.0]
    # matched loss: stopped at the first epoch at the target, read off an independent run by epochs
    target = 0.55
    m = margin_experiment(X, y, X, y, budget="loss", epochs=128, target_loss=target, **kw)
    for row in range(4):
        arm, bs = m["arm"][row], m["batch_size"][row] or None
        hist = fit(build_network(arm, [2, 6], n_classes=1, seed=0), X, y, epochs=128, batch_size=bs, lr=3e-3,
                   seed=0, progress=False)
        first = int(np.flatnonzero(np.asarray(hist.train_loss) <= target)[0])
        assert m["reached"][row] and m["epochs"][row] == first
        assert m["train_loss"][row] == hist.train_loss[first] <= target
    unreachable = margin_experiment(X, y, X, y, budget="loss", epochs=2, target_loss=1e-6, **kw)
    assert not unreachable["reached"].any() and (unreachable["epochs"] == 2).all()


def test_precise_arms_versus_and_holm_verdicts():
    X, y = data.moons(48, seed=0)
    t = margin_experiment(X, y, X, y, widths=[2, 6], arms=("plain", "bn", "dropout"), batch_sizes=[8],
                          seeds=[0, 1, 2], steps=20, progress=False)
    both = precise_arms(t)
    assert sorted(set(both["arm"])) == ["bn", "bn_precise", "dropout", "plain"]
    assert np.array_equal(both[both["arm"] == "bn_precise"]["margin"], t["margin_precise"][t["arm"] == "bn"])
    d = versus(both, ["bn", "bn_precise", "dropout"], values=["margin", "test_accuracy"])
    assert len(d) == 6 and (d["n"] == 3).all()
    for _, row in d.iterrows():
        own = both[both["arm"] == row["arm"]].sort_values("seed")[row["value"]].to_numpy()
        base = both[both["arm"] == "plain"].sort_values("seed")[row["value"]].to_numpy()
        assert np.allclose(row["points"], own - base)
        ref = paired_difference(both, row["value"], row["arm"], "plain").iloc[0]
        assert np.isclose(row["mean"], (own - base).mean()) and row["p"] == ref["p"] and row["lo"] == ref["lo"]
    v = holm_verdicts(d, margin={"margin": 0.01})
    assert np.allclose(v["p_holm"], holm(d["p"]))
    assert set(v["verdict"]) <= {"positive", "negative", "equivalent", "inconclusive"}


@pytest.mark.parametrize(
    "call",
    [
        lambda: build_network("batchnorm", [2, 3], n_classes=1),
        lambda: margin_experiment(np.zeros((4, 2)), np.zeros(4), np.zeros((4, 2)), np.zeros(4), widths=[2, 3],
                                  margin="geodesic"),
        lambda: margin_experiment(np.zeros((4, 2)), np.zeros(4), np.zeros((4, 2)), np.zeros(4), widths=[2, 3],
                                  budget="time"),
        lambda: margin_experiment(np.zeros((4, 2)), np.zeros(4), np.zeros((4, 2)), np.zeros(4), widths=[2, 3],
                                  budget="epochs"),
        lambda: margin_experiment(np.zeros((4, 2)), np.zeros(4), np.zeros((4, 2)), np.zeros(4), widths=[2, 3],
                                  budget="loss", epochs=3),
        lambda: precise_arms({"arm": np.array(["bn"]), "seed": np.array([0])}),
        lambda: fit(MLP([2, 3], n_classes=1), np.zeros((4, 2)), np.zeros(4), steps=1, batch_size=8),
        lambda: fit(MLP([2, 3], n_classes=1), np.zeros((4, 2)), np.zeros(4), steps=1, batch_size=2,
                    optimizer="lbfgs"),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
