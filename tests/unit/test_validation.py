"""Bad input to bnlib's public functions: one table per function, one message format.

Every row is (call with one bad argument, the parameter it names). The message must say which
parameter of which function, in scikit-learn's manner: "The 'seeds' parameter of
layer_experiment must be ...; got ...".
"""

import re

import numpy as np
import pytest
import torch

from bnlib import MLP, data, noise, stats, train
from bnlib import _validation as v
from bnlib.experiments import ch1_counting, ch2_partition, ch3_initialization, ch4_noise

X2 = np.random.default_rng(0).normal(size=(40, 2))
Y2 = (X2[:, 0] > 0).astype(int)


def _message(name, func):
    return re.escape(f"The '{name}' parameter of {func} must be")


CASES = {
    "MLP": [
        (lambda: MLP([2]), "widths"),
        (lambda: MLP([2, 0]), "widths"),
        (lambda: MLP([2, 1.5]), "widths"),
        (lambda: MLP([2, 4], negative_slope=-0.1), "negative_slope"),
        (lambda: MLP([2, 4], negative_slope=float("nan")), "negative_slope"),
        (lambda: MLP([2, 4], n_classes=0), "n_classes"),
        (lambda: MLP([2, 4], seed=-1), "seed"),
        (lambda: MLP([2, 4], seed=1.5), "seed"),
    ],
    "fit": [
        (lambda: train.fit(MLP([2, 4], n_classes=1), X2, Y2, epochs=1.5, progress=False), "epochs"),
        (lambda: train.fit(MLP([2, 4], n_classes=1), X2, Y2, epochs=-1, progress=False), "epochs"),
        (lambda: train.fit(MLP([2, 4], n_classes=1), X2, Y2, steps=2.5, progress=False), "steps"),
        (lambda: train.fit(MLP([2, 4], n_classes=1), X2, Y2, batch_size=0, progress=False), "batch_size"),
        (lambda: train.fit(MLP([2, 4], batchnorm=True, n_classes=1), X2, Y2, batch_size=1, progress=False),
         "batch_size"),
        (lambda: train.fit(MLP([2, 4], n_classes=1), X2, Y2, steps=1, batch_size=41, progress=False),
         "batch_size"),
        (lambda: train.fit(MLP([2, 4], n_classes=1), X2, Y2, optimizer="rmsprop", progress=False), "optimizer"),
        (lambda: train.fit(MLP([2, 4], n_classes=1), X2, Y2, seed=-3, progress=False), "seed"),
    ],
    "counting_network": [
        (lambda: ch1_counting.counting_network(0, 4, seed=0), "depth"),
        (lambda: ch1_counting.counting_network(2, 2.5, seed=0), "width"),
        (lambda: ch1_counting.counting_network(2, 4, seed=-1), "seed"),
        (lambda: ch1_counting.counting_network(2, 4, seed=0, init="xavier"), "init"),
        (lambda: ch1_counting.counting_network(2, 4, seed=0, negative_slope=-1), "negative_slope"),
    ],
    "region_counts": [
        (lambda: ch1_counting.region_counts([1.5], [4], [0], progress=False), "depths"),
        (lambda: ch1_counting.region_counts([1], [], [0], progress=False), "widths"),
        (lambda: ch1_counting.region_counts([1], [4], [-1], progress=False), "seeds"),
        (lambda: ch1_counting.region_counts([1], [4], [0], box=(1, 0, 0, 1), progress=False), "box"),
    ],
    "layer_experiment": [
        (lambda: ch2_partition.layer_experiment(X2, seeds=[1.5], progress=False), "seeds"),
        (lambda: ch2_partition.layer_experiment(X2, seeds=[-1], progress=False), "seeds"),
        (lambda: ch2_partition.layer_experiment(X2, seeds=[], progress=False), "seeds"),
        (lambda: ch2_partition.layer_experiment(X2, depth=0, seeds=[0], progress=False), "depth"),
        (lambda: ch2_partition.layer_experiment(X2, width=2.5, seeds=[0], progress=False), "width"),
        (lambda: ch2_partition.layer_experiment(X2, box=(0, 0, 0, 1), seeds=[0], progress=False), "box"),
        (lambda: ch2_partition.layer_experiment(np.zeros((5, 3)), seeds=[0], progress=False), "X"),
    ],
    "shift_scale_experiment": [
        (lambda: ch2_partition.shift_scale_experiment(X2, seeds=[0.5], progress=False), "seeds"),
        (lambda: ch2_partition.shift_scale_experiment(X2, seeds=[0], n_probe=0, progress=False), "n_probe"),
    ],
    "digits_experiment": [
        (lambda: ch2_partition.digits_experiment(X2, widths=[4, 0], seeds=[0], progress=False), "widths"),
        (lambda: ch2_partition.digits_experiment(X2, seeds=[True], progress=False), "seeds"),
        (lambda: ch2_partition.digits_experiment(X2[:1], seeds=[0], progress=False), "X"),
    ],
    "run_arms": [
        (lambda: ch3_initialization.run_arms(X2, Y2, widths=[2, 4], n_classes=1, seeds=[1.5], progress=False),
         "seeds"),
        (lambda: ch3_initialization.run_arms(X2, Y2, widths=[2, 4], n_classes=1, seeds=[0], arms=["adam"],
                                             progress=False), "arms"),
        (lambda: ch3_initialization.run_arms(X2, Y2, widths=[2], n_classes=1, seeds=[0], progress=False),
         "widths"),
    ],
    "snapshots": [
        (lambda: ch3_initialization.snapshots("plain", X2, Y2, widths=[2, 4], n_classes=1, seed=0, at=[-1]), "at"),
        (lambda: ch3_initialization.snapshots("plain", X2, Y2, widths=[2, 4], n_classes=1, seed=0, at=[1.5]),
         "at"),
        (lambda: ch3_initialization.snapshots("bnn", X2, Y2, widths=[2, 4], n_classes=1, seed=0, at=[1]), "arm"),
    ],
    "initial_model": [
        (lambda: ch3_initialization.initial_model("none", [2, 4], 1, X2, seed=0), "arm"),
    ],
    "build_network": [
        (lambda: ch4_noise.build_network("batchnorm", [2, 4], n_classes=1), "arm"),
        (lambda: ch4_noise.build_network("dropout", [2, 4], n_classes=1, dropout=1.0), "dropout"),
    ],
    "margin_experiment": [
        (lambda: ch4_noise.margin_experiment(X2, Y2, X2, Y2, widths=[2, 4], seeds=[-2], progress=False), "seeds"),
        (lambda: ch4_noise.margin_experiment(X2, Y2, X2, Y2, widths=[2, 4], seeds=[0], margin="soft",
                                             progress=False), "margin"),
        (lambda: ch4_noise.margin_experiment(X2, Y2, X2, Y2, widths=[2, 4], seeds=[0], arms=["nope"],
                                             progress=False), "arms"),
        (lambda: ch4_noise.margin_experiment(X2, Y2, X2, Y2, widths=[2, 4], seeds=[0], steps=2.5,
                                             progress=False), "steps"),
        (lambda: ch4_noise.margin_experiment(X2, Y2, X2, Y2, widths=[2, 4], seeds=[0], batch_sizes=[1],
                                             progress=False), "batch_sizes"),
    ],
    "gaussian_batch_statistics": [
        (lambda: noise.gaussian_batch_statistics(1, 10), "batch_size"),
        (lambda: noise.gaussian_batch_statistics(4.5, 10), "batch_size"),
    ],
    "hyperplane_jitter": [
        (lambda: noise.hyperplane_jitter(MLP([2, 3], batchnorm=True), X2, 1), "batch_size"),
        (lambda: noise.hyperplane_jitter(MLP([2, 3], batchnorm=True), X2, 4, n_batches=1), "n_batches"),
    ],
    "BatchNoise": [
        (lambda: noise.BatchNoise(0, 8), "num_features"),
        (lambda: noise.BatchNoise(3, 1), "batch_size"),
    ],
    "mean_interval": [
        (lambda: stats.mean_interval([1.0, 2.0], level=1.0), "level"),
    ],
}


@pytest.mark.parametrize(
    "func, call, name",
    [(func, call, name) for func, rows in CASES.items() for call, name in rows],
    ids=[f"{func}-{name}-{i}" for func, rows in CASES.items() for i, (_, name) in enumerate(rows)],
)
def test_bad_input_names_parameter_and_function(func, call, name):
    with pytest.raises(ValueError, match=_message(name, func)):
        call()


def test_integral_floats_are_the_integers_they_stand_for():
    # 3.0 is accepted as 3 everywhere, never truncated: the same network either way
    a, b = MLP([2, 3.0], seed=2.0), MLP([2, 3], seed=2)
    assert torch.equal(a[0].weight, b[0].weight)
    t1 = ch1_counting.region_counts([1.0], [4], [0.0], progress=False)
    t2 = ch1_counting.region_counts([1], [4], [0], progress=False)
    assert t1["regions"].tolist() == t2["regions"].tolist()


@pytest.mark.parametrize("bad", [1.5, True, -1, "3", None, float("inf")])
def test_check_int_refuses_what_is_not_an_integer(bad):
    with pytest.raises(ValueError, match=r"The 'n' parameter of f must be an integer >= 0; got"):
        v.check_int(bad, "n", "f", at_least=0)


@pytest.mark.parametrize("bad", [[1.5], [-1], [], 3, "01", [0, True]])
def test_check_seeds_refuses_non_seeds(bad):
    with pytest.raises(ValueError, match=r"The 'seeds' parameter of f must be a non-empty sequence of non-negative"):
        v.check_seeds(bad, "seeds", "f")


def test_message_shows_what_came():
    with pytest.raises(ValueError) as err:
        ch2_partition.layer_experiment(X2, seeds=[1.5], progress=False)
    assert str(err.value) == (
        "The 'seeds' parameter of layer_experiment must be a non-empty sequence of non-negative integers; "
        "got [1.5]."
    )


def test_range_generators_are_seeds():
    assert v.check_seeds(range(3), "seeds", "f") == [0, 1, 2]
    assert v.check_seeds(np.arange(2), "seeds", "f") == [0, 1]


def test_points_and_box_messages():
    with pytest.raises(ValueError, match=r"The 'X' parameter of f must be an array of shape \(n, 2\); got shape \(3, 3\)"):
        v.check_points(np.zeros((3, 3)), 2, "X", "f")
    with pytest.raises(ValueError, match=r"must be an array of finite numbers; got 1 NaN"):
        v.check_points([[0.0, np.nan]], 2, "X", "f")
    with pytest.raises(ValueError, match=r"The 'box' parameter of f must be"):
        v.check_box((0, 1, 2), "box", "f")
    Xd, *_ = data.digits(seed=0)
    assert v.check_points(Xd, None, "X", "f").shape[1] == 64
