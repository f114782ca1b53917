"""bnlib.experiments.ch4_noise: the arms from one set of weights, the seeded margin experiment."""

import numpy as np
import pytest
import torch
from scipy import integrate

from bnlib import MLP, data, partition
from bnlib import noise as nz
from bnlib.experiments.ch4_noise import build_network, margin_experiment
from bnlib.train import fit

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
        assert np.array_equal(a[key], b[key])
    c = margin_experiment(X, y, X, y, **dict(kw, margin="local"))
    assert np.all(np.isfinite(c["margin"]))


def test_fit_by_steps_counts_steps():
    X, y = data.moons(20, seed=0)
    net = build_network("bn", [2, 4], n_classes=1, seed=0)
    fit(net, X, y, steps=7, batch_size=6, progress=False)
    assert int(net[1].num_batches_tracked) == 7  # 3 full batches per epoch, last 2 dropped


@pytest.mark.parametrize(
    "call",
    [
        lambda: build_network("batchnorm", [2, 3], n_classes=1),
        lambda: margin_experiment(np.zeros((4, 2)), np.zeros(4), np.zeros((4, 2)), np.zeros(4), widths=[2, 3],
                                  margin="geodesic"),
        lambda: fit(MLP([2, 3], n_classes=1), np.zeros((4, 2)), np.zeros(4), steps=1, batch_size=8),
        lambda: fit(MLP([2, 3], n_classes=1), np.zeros((4, 2)), np.zeros(4), steps=1, batch_size=2,
                    optimizer="lbfgs"),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
