"""The frame functions of chapters 3 and 4 (bnlib.frames): every state their players and widgets show.

Chapter 3 draws stored training snapshots (``training_snapshot_frame``, ``training_pair_frame``);
chapter 4 the band a BN network's decision boundary sweeps over mini-batches
(``batch_band_frame``). The inputs here are small versions of the chapters' (fewer points,
narrower networks), with the same parameter values as the chapters' players and live widgets.
Titles are checked against independent computations: the torch model's own predictions for the
training accuracy, the partition with the full data's statistics for the full batch.
"""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import bnlib  # noqa: E402
from bnlib.experiments.ch3_initialization import initial_model, snapshots  # noqa: E402
from bnlib.experiments.ch4_noise import build_network  # noqa: E402
from bnlib.frames import batch_band_frame, training_pair_frame, training_snapshot_frame  # noqa: E402
from bnlib.train import fit  # noqa: E402

# chapter 3's player and live widget
AT = [0, 1, 2, 3, 5, 8, 12, 20]
SHOWN = ("plain", "bn_init")
LABELS = {"plain": "no BN", "bn": "BN throughout", "bn_init": "BN as init only", "lsuv": "LSUV"}
WIDTHS = [2, 6, 6]
BOX3 = (-1.5, 2.5, -1.2, 1.7)

# chapter 4's player (batch sizes) and live widget (batch sizes, seeds)
BATCH_SIZES = [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
SEEDS = range(21)
BOX4 = (-1.7, 2.7, -1.3, 1.8)


@pytest.fixture(scope="module")
def spirals_snapshots():
    """Chapter 3's stored state, small and untrained: one network per (arm, epoch) on 64 moons.

    The frame only reads the stored partitions, so the "snapshot" of each epoch here is a network
    of its own (seeded by the epoch, built as the chapter builds the arm) rather than a trained
    state: the chapter's snapshots are checked by the chapter itself. One trained snapshot checks
    that a state from :func:`snapshots` draws the same way.
    """
    X, y = bnlib.data.moons(64, noise=0.1, seed=0)
    parts, nets = {}, {}
    for arm in SHOWN:
        for epoch in AT:
            nets[arm, epoch] = initial_model(arm, WIDTHS, 1, X, seed=epoch)
            if (arm, epoch) == ("bn_init", AT[-1]):
                (state,) = snapshots(arm, X, y, widths=WIDTHS, n_classes=1, seed=epoch, at=[2], batch_size=32)
                nets[arm, epoch].load_state_dict(state)
            parts[arm, epoch] = bnlib.partition(nets[arm, epoch], BOX3)
    return X, y, parts, nets


@pytest.mark.parametrize("arm", SHOWN)
@pytest.mark.parametrize("epoch", AT)
def test_training_snapshot_frame_draws_every_snapshot(spirals_snapshots, arm, epoch):
    X, y, parts, nets = spirals_snapshots
    fig, ax = plt.subplots()
    part = training_snapshot_frame(ax, partitions=parts, X=X, y=y, arm=arm, epoch=epoch, labels=LABELS)
    assert part is parts[arm, epoch]
    title = ax.get_title()
    assert title.startswith(f"{LABELS[arm]}, epoch {epoch}\n{part.n_regions} regions")
    # the title's accuracy is the trained torch model's (eval mode), not only the partition's
    torch_accuracy = bnlib.train.accuracy(nets[arm, epoch], X, y)
    assert title.endswith(f"train accuracy {torch_accuracy:.2f}")
    assert len(ax.collections) >= 3  # regions, boundaries, data (and the decision boundary)
    assert ax.get_xlim() == BOX3[:2] and ax.get_ylim() == BOX3[2:]
    plt.close(fig)


def test_training_snapshot_frame_default_labels_are_the_books(spirals_snapshots):
    X, y, parts, _ = spirals_snapshots
    fig, ax = plt.subplots()
    training_snapshot_frame(ax, partitions=parts, X=X, y=y, arm="plain", epoch=0)
    assert ax.get_title().startswith(bnlib.plot.ARM_STYLES["plain"]["label"] + ", epoch 0")
    plt.close(fig)


@pytest.mark.parametrize("epoch", AT)
def test_training_pair_frame_draws_both_arms(spirals_snapshots, epoch):
    X, y, parts, _ = spirals_snapshots
    fig, axes = plt.subplots(1, 2)
    drawn = training_pair_frame(axes, partitions=parts, X=X, y=y, arms=SHOWN, epoch=epoch, labels=LABELS)
    assert drawn == [parts[arm, epoch] for arm in SHOWN]
    for ax, arm in zip(axes, SHOWN):
        assert ax.get_title().startswith(f"{LABELS[arm]}, epoch {epoch}")
        assert ax.collections
    plt.close(fig)


def test_training_frames_in_the_player(spirals_snapshots):
    X, y, parts, _ = spirals_snapshots
    pair = functools.partial(training_pair_frame, partitions=parts, X=X, y=y, arms=SHOWN, labels=LABELS)
    html = bnlib.widgets.player_html(pair, [dict(epoch=e) for e in AT[:2]], ncols=2, dpi=30)
    assert html.count("data:image/png;base64") == 2


def test_training_frames_bad_input(spirals_snapshots):
    X, y, parts, _ = spirals_snapshots
    fig, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="stored snapshot"):
        training_snapshot_frame(axes[0], partitions=parts, X=X, y=y, arm="bn", epoch=0)
    with pytest.raises(ValueError, match="stored snapshot"):
        training_snapshot_frame(axes[0], partitions=parts, X=X, y=y, arm="plain", epoch=4)
    with pytest.raises(ValueError, match="'y'"):
        training_snapshot_frame(axes[0], partitions=parts, X=X, y=y[:-1], arm="plain", epoch=0)
    with pytest.raises(ValueError, match="'X'"):
        training_snapshot_frame(axes[0], partitions=parts, X=X[:, :1], y=y, arm="plain", epoch=0)
    with pytest.raises(ValueError, match="one axes per arm"):
        training_pair_frame(axes, partitions=parts, X=X, y=y, arms=("plain",), epoch=0)
    with pytest.raises(ValueError, match="stored snapshot"):
        training_pair_frame(axes, partitions=parts, X=X, y=y, arms=SHOWN, epoch=7)
    plt.close(fig)


@pytest.fixture(scope="module")
def trained_bn():
    """Chapter 4's trained BN network, narrower and trained for fewer steps, on its 128 moons."""
    X, y = bnlib.data.moons(128, noise=0.2, seed=0)
    net = build_network("bn", [2, 8, 8], n_classes=1, seed=0)
    fit(net, X, y, steps=100, batch_size=16, lr=3e-3, seed=0, progress=False)
    net.eval()
    return X, y, net, bnlib.partition(net, BOX4, batch=X)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_batch_band_frame_draws_every_batch_size(trained_bn, batch_size):
    X, y, net, reference = trained_bn
    fig, ax = plt.subplots()
    segs = batch_band_frame(ax, model=net, X=X, y=y, box=BOX4, batch_size=batch_size, n_batches=4,
                            reference=reference)
    assert len(segs) == 4 and all(s.ndim == 3 and s.shape[1:] == (2, 2) for s in segs)
    assert ax.get_title() == f"batches of N = {batch_size}"
    assert ax.collections  # the faded partition and the data
    # one collection per batch, drawn above the partition, holding that batch's boundary segments
    bands = [c for c in ax.collections if c.get_zorder() == 3 and c.get_alpha() == 0.6]
    assert len(bands) == len(segs)
    for band, s in zip(bands, segs):
        assert len(band.get_segments()) == len(s)
        np.testing.assert_allclose(np.array(band.get_segments()), s)
    if batch_size == len(X):  # the full batch: every boundary is the reference's
        for s in segs:
            np.testing.assert_allclose(s, reference.decision_boundary())
    plt.close(fig)


@pytest.mark.parametrize("seed", SEEDS)
def test_batch_band_frame_draws_every_seed(trained_bn, seed):
    X, y, net, reference = trained_bn
    fig, ax = plt.subplots()
    segs = batch_band_frame(ax, model=net, X=X, y=y, box=BOX4, batch_size=8, seed=seed, n_batches=2,
                            reference=reference)
    assert len(segs) == 2 and ax.get_title() == "batches of N = 8"
    plt.close(fig)


def test_batch_band_frame_batches_are_seeded_and_reference_optional(trained_bn):
    X, y, net, reference = trained_bn
    fig, axes = plt.subplots(1, 3)
    a = batch_band_frame(axes[0], model=net, X=X, y=y, box=BOX4, batch_size=4, seed=3, n_batches=3)
    b = batch_band_frame(axes[1], model=net, X=X, y=y, box=BOX4, batch_size=4, seed=3, n_batches=3,
                         reference=reference)
    c = batch_band_frame(axes[2], model=net, X=X, y=y, box=BOX4, batch_size=4, seed=4, n_batches=3,
                         reference=reference)
    assert all(np.array_equal(s, t) for s, t in zip(a, b))
    assert not all(s.shape == t.shape and np.allclose(s, t) for s, t in zip(a, c))
    plt.close(fig)


def test_batch_band_frame_leaves_the_model_alone(trained_bn):
    X, y, net, reference = trained_bn
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fig, ax = plt.subplots()
    batch_band_frame(ax, model=net, X=X, y=y, box=BOX4, batch_size=8, n_batches=2, reference=reference)
    plt.close(fig)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # running stats too


def test_batch_band_frame_in_the_player(trained_bn):
    X, y, net, reference = trained_bn
    band = functools.partial(batch_band_frame, model=net, X=X, y=y, box=BOX4, reference=reference, n_batches=2)
    html = bnlib.widgets.player_html(band, [dict(batch_size=N) for N in (2, 128)], dpi=30)
    assert html.count("data:image/png;base64") == 2


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(batch_size=1), "batch_size"),
        (dict(batch_size=129), "batch_size"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(batch_size=8, n_batches=0), "n_batches"),
        (dict(batch_size=8, seed=-1), "seed"),
        (dict(batch_size=8, X=np.zeros((10, 3))), "'X'"),
        (dict(batch_size=8, X=np.full((10, 2), np.nan)), "'X'"),
    ],
)
def test_batch_band_frame_bad_input(trained_bn, params, match):
    X, y, net, reference = trained_bn
    kwargs = dict(model=net, X=X, y=y, box=BOX4, reference=reference, n_batches=2)
    kwargs.update(params)
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=match):
        batch_band_frame(ax, **kwargs)
    plt.close(fig)
