"""Teaching data: seeded, shaped as documented, bad arguments refused."""

import numpy as np
import pytest

from bnlib import data


def test_gaussian_mixture_places_and_shapes_the_clusters():
    X, y = data.gaussian_mixture(4000, centers=[(1.5, 1.0), (-2.0, 0.5)], std=(0.6, 0.2), seed=1)
    assert X.shape == (4000, 2) and X.dtype == np.float64 and set(y.tolist()) == {0, 1}
    for k, centre in enumerate([(1.5, 1.0), (-2.0, 0.5)]):
        assert np.allclose(X[y == k].mean(0), centre, atol=0.05)
        assert np.allclose(X[y == k].std(0), (0.6, 0.2), rtol=0.08)


def test_rotation_turns_the_long_axis():
    X, _ = data.gaussian_mixture(5000, centers=[(0, 0)], std=(1.0, 0.1), angle=np.pi / 2, seed=0)
    assert X[:, 1].std() > 5 * X[:, 0].std()


@pytest.mark.parametrize("make", [data.moons, data.circles, data.spirals])
def test_two_class_sets_are_seeded_and_balanced(make):
    X1, y1 = make(200, seed=3)
    X2, y2 = make(200, seed=3)
    X3, _ = make(200, seed=4)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2) and not np.array_equal(X1, X3)
    assert X1.shape == (200, 2) and np.bincount(y1).tolist() == [100, 100]


def test_shift_and_scale_move_the_data():
    X, _ = data.moons(300, shift=(5, -3), scale=2, seed=0)
    X0, _ = data.moons(300, seed=0)
    assert np.allclose(X, 2 * X0 + [5, -3])


def test_digits_are_bundled_and_split_stratified():
    X_train, X_test, y_train, y_test = data.digits(test_fraction=0.25, seed=0)
    assert X_train.shape[1] == 64 and len(X_train) + len(X_test) == 1797
    assert 0 <= X_train.min() and X_train.max() <= 1
    assert np.allclose(np.bincount(y_test) / len(y_test), np.bincount(y_train) / len(y_train), atol=0.01)


@pytest.mark.parametrize(
    "call",
    [
        lambda: data.gaussian_mixture(0),
        lambda: data.gaussian_mixture(10, centers=[(0, 0, 0)]),
        lambda: data.gaussian_mixture(10, centers=[(np.nan, 0)]),
        lambda: data.gaussian_mixture(10, std=-1),
        lambda: data.moons(1),
        lambda: data.spirals(2.5),
        lambda: data.digits(test_fraction=1.5),
    ],
)
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
