"""The training loop: seeded, deterministic, learns, refuses bad arguments."""

import numpy as np
import pytest
import torch

from bnlib import MLP, data
from bnlib.train import accuracy, fit


@pytest.fixture(scope="module")
def moons():
    return data.moons(200, noise=0.1, seed=0)


def test_same_seed_same_history_and_weights(moons):
    X, y = moons
    runs = []
    for _ in range(2):
        net = MLP([2, 16, 16], batchnorm=True, n_classes=1, seed=3)
        h = fit(net, X, y, epochs=4, batch_size=16, seed=7, progress=False)
        runs.append((h.train_loss, [p.detach().clone() for p in net.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_it_learns_a_separable_task(moons):
    X, y = moons
    net = MLP([2, 32, 32], n_classes=1, seed=0)
    h = fit(net, X, y, epochs=60, batch_size=None, lr=0.02, seed=0, X_test=X, y_test=y, progress=False)
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert accuracy(net, X, y) > 0.95 and h.test_accuracy[-1] == pytest.approx(accuracy(net, X, y))


def test_multiclass_and_step_count():
    X, y = data.gaussian_mixture(90, centers=[(0, 0), (3, 0), (0, 3)], std=0.5, seed=1)
    h = fit(MLP([2, 8], n_classes=3, seed=0), X, y, epochs=3, batch_size=30, seed=0, progress=False)
    assert h.steps == 9 and np.isnan(h.test_accuracy).all()


def test_single_sample_batches_are_skipped_for_bn():
    X, y = data.moons(33, seed=0)
    h = fit(MLP([2, 4], batchnorm=True, n_classes=1), X, y, epochs=1, batch_size=16, seed=0, progress=False)
    assert h.steps == 2  # 16 + 16, the lone 33rd sample is dropped


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(batch_size=0), "batch_size"),
        (dict(epochs=-1), "epochs"),
        (dict(batch_size=1), "integer >= 2"),
    ],
)
def test_bad_arguments(moons, kwargs, match):
    X, y = moons
    with pytest.raises(ValueError, match=match):
        fit(MLP([2, 4], batchnorm=True, n_classes=1), X, y, progress=False, **kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match="finite"):
        fit(MLP([2, 4], n_classes=1), np.full((4, 2), np.nan), np.zeros(4), progress=False)
    with pytest.raises(ValueError, match="same length"):
        fit(MLP([2, 4], n_classes=1), np.zeros((4, 2)), np.zeros(3), progress=False)


def test_fit_by_steps_sees_exactly_full_batches_and_is_seeded():
    # oracle: count the samples every BN forward pass in training mode receives
    X, y = data.moons(50, seed=0)
    net = MLP([2, 4], batchnorm=True, n_classes=1, seed=0)
    seen = []
    net[1].register_forward_hook(lambda m, i, o: seen.append(len(i[0])) if m.training else None)
    h = fit(net, X, y, steps=9, batch_size=16, seed=3, progress=False)
    assert h.steps == 9 and seen == [16] * 9  # 3 full batches per epoch, the 2 left over dropped
    h2 = fit(MLP([2, 4], batchnorm=True, n_classes=1, seed=0), X, y, steps=9, batch_size=16, seed=3, progress=False)
    assert h.train_loss == h2.train_loss


def test_fit_seeds_dropout_and_leaves_global_generator_alone():
    X, y = data.moons(40, seed=0)

    def run():
        net = MLP([2, 8], n_classes=1, seed=0)
        net = torch.nn.Sequential(*list(net)[:2], torch.nn.Dropout(0.5), *list(net)[2:])
        return fit(net, X, y, steps=5, batch_size=8, seed=1, progress=False).train_loss

    state = torch.random.get_rng_state()
    a = run()
    torch.manual_seed(123)  # another global state: the same run
    b = run()
    assert a == b
    torch.random.set_rng_state(state)


def test_history_reports_running_and_precise_statistics_for_bn():
    from bnlib.nets import precise_batchnorm

    X, y = data.moons(64, seed=0)
    net = MLP([2, 8], batchnorm=True, n_classes=1, seed=0)
    h = fit(net, X, y, epochs=2, batch_size=8, seed=0, X_test=X, y_test=y, progress=False)
    assert h.train_accuracy[-1] == accuracy(net, X, y)  # running statistics
    assert h.test_accuracy_precise[-1] == accuracy(precise_batchnorm(net, X), X, y)
    plain = fit(MLP([2, 8], n_classes=1, seed=0), X, y, epochs=1, progress=False)
    assert np.isnan(plain.train_accuracy_precise).all()
