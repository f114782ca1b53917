"""Chapter 5's experiments: batch normalization in real networks.

Four questions, each a runner that returns a tidy table (one row per seed and arm):

* **Training mode against evaluation mode** (:func:`mode_experiment`). A BN network trained with
  mini-batches of ``N`` is trained once per seed and batch size (:func:`record_run`), with every
  step's batch statistics recorded, so that the running statistics of *any* momentum are
  recomputed afterwards exactly as torch computes them (:func:`running_statistics`: the momentum
  never changes the weights, only the running average). The table compares the network with the
  statistics of one mini-batch (training mode), with running statistics and with precise statistics
  (:func:`bnlib.nets.precise_batchnorm`): test accuracy and how far the decision boundary moves
  (:func:`bnlib.geometry.boundary_displacement`).
* **Where the learned gamma and beta put the hyperplanes** (:func:`train_arms`,
  :func:`unit_geometry`): each hidden unit's hyperplane, in its layer's input space, measured from
  the data's centroid in data-spread units, whether it still cuts the data, whether it stays near
  the centroid (the pencil of chapter 2).
* **Image networks** (:func:`conv_network`: the book's ConvNet and small ResNet, with and without
  BN, and the He-initialised control): training on the digit images (:func:`train_images`,
  :func:`conv_experiment`), and exact partitions of planes through three test images
  (:func:`plane_experiment`: the distance from each image to the nearest ReLU boundary and the
  regions near it, :func:`plane_measures`).
* **Other normalizations** (:data:`ARMS`: LayerNorm and GroupNorm beside BN and the plain network
  with He weights): distances from the data to the nearest boundary along rays
  (:func:`ray_distances`, by :func:`bnlib.geometry.distance_by_bisection`, which works for any
  network).

The arms' colours and labels are :func:`bnlib.plot.arm_styles`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .._validation import check_choice, check_choices, check_int, check_ints, check_number, check_seed, check_seeds
from ..geometry import boundary_displacement, distance_by_bisection, rms_radius
from ..nets import MLP, affine_layers, check_points, precise_batchnorm, preactivations
from ..partition import Plane, partition
from .._validation import check_box
from ..stats import holm_verdicts, paired_difference
from ..train import accuracy, fit
from .ch2_partition import network as _ch2_network

__all__ = ["ARMS", "network", "RecordedRun", "record_run", "running_statistics", "mode_experiment",
           "train_arms", "unit_geometry", "ray_distances", "compare", "holm_verdicts",
           "CUT_SHARE", "NEAR_CENTROID", "CONV_ARMS", "IMAGE_NETS", "conv_network", "precise_conv", "conv_experiment",
           "train_images", "plane_triples", "plane_measures", "PLANE_ARMS", "plane_experiment"]

ARMS = ("plain_he", "bn", "layernorm", "groupnorm")
"""The arms, all with the same ``Linear`` weights for a seed (normalization layers draw no random
numbers) except the control: ``"plain_he"`` (no normalization, He weights, the baseline at its
best), ``"bn"`` (``BatchNorm1d`` after each hidden ``Linear``), ``"layernorm"`` (``LayerNorm`` over the
layer's units) and ``"groupnorm"`` (``GroupNorm``: the units split into groups, each normalised by
its own statistics)."""

CUT_SHARE = 0.05
"""A unit's hyperplane *cuts the data* when at least this share of the points lies on each side."""

NEAR_CENTROID = 0.5
"""A unit's hyperplane is *near the centroid* when it passes within this many data-spread units of it."""

_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} runs"  # no timings: outputs stay reproducible


def network(arm: str, widths: Sequence[int], *, n_classes: int, seed: int, groups: int = 4,
            negative_slope: float = 0.1) -> nn.Sequential:
    """The network of one arm: ``Linear -> (normalization) -> LeakyReLU`` blocks and an output ``Linear``.

    Parameters
    ----------
    arm
        One of :data:`ARMS`.
    widths
        ``[d_in, d_1, ..., d_L]``.
    n_classes
        Outputs of the final ``Linear`` (1: a binary classifier read by its sign).
    seed
        Seed of the weights: ``MLP(widths, seed=seed)``'s; for ``"plain_he"`` the hidden weights are
        redrawn as He (Kaiming-normal) weights, as :func:`bnlib.experiments.ch2_partition.network`.
    groups
        Number of groups of ``"groupnorm"`` (it must divide every width).

    Examples
    --------
    >>> [type(m).__name__ for m in network("layernorm", [2, 4], n_classes=1, seed=0)]
    ['Linear', 'LayerNorm', 'LeakyReLU', 'Linear']
    >>> a, b = network("bn", [2, 4], n_classes=1, seed=0), network("groupnorm", [2, 4], n_classes=1, seed=0)
    >>> bool(torch.equal(a[0].weight, b[0].weight)), b[1].num_groups
    (True, 4)
    """
    func = "network"
    arm = check_choice(arm, "arm", func, ARMS)
    widths = check_ints(widths, "widths", func, at_least=1, min_len=2)
    n_classes = check_int(n_classes, "n_classes", func, at_least=1)
    seed = check_seed(seed, "seed", func)
    groups = check_int(groups, "groups", func, at_least=1)
    if arm == "groupnorm" and any(w % groups for w in widths[1:]):
        raise ValueError(f"The 'groups' parameter of {func} must divide every hidden width {widths[1:]}; got {groups}.")
    net = MLP(widths, batchnorm=arm != "plain_he", negative_slope=negative_slope, n_classes=n_classes, seed=seed)
    if arm == "plain_he":
        he = _ch2_network("plain_he", widths, seed=seed, negative_slope=negative_slope)
        net.load_state_dict({**net.state_dict(), **he.state_dict()})  # hidden layers: He; output: MLP's
    elif arm in ("layernorm", "groupnorm"):
        for i, m in enumerate(net):
            if isinstance(m, nn.BatchNorm1d):
                k = m.num_features
                net[i] = nn.LayerNorm(k) if arm == "layernorm" else nn.GroupNorm(groups, k)
    return net


# ----------------------------------------------------------------------------------------
# training mode against evaluation mode


@dataclass
class RecordedRun:
    """One BN network's training run with every step's batch statistics.

    Attributes
    ----------
    model : nn.Sequential
        The network after the last step (its own running statistics: momentum 0.1).
    snapshots : dict
        ``step -> state_dict`` at the recorded steps (``0`` is the initial network).
    means, variances : list of ndarray
        Per BN layer, the batch mean and the *unbiased* batch variance of each step, shape
        (steps, units): what torch averages into the running statistics.
    batch_size : int
    """

    model: nn.Sequential
    snapshots: dict
    means: list = field(default_factory=list)
    variances: list = field(default_factory=list)
    batch_size: int = 0

    @property
    def steps(self) -> int:
        return len(self.means[0]) if self.means else 0

    def as_json(self, widths: Sequence[int], n_classes: int) -> dict:
        """The run as plain lists (``from_json`` reads it back): what a saved run keeps.

        Weights are float32, kept exactly (9 significant digits); the batch statistics (float64 means
        and variances of float32 batches) to 8 significant digits, below float32's resolution.
        """
        def short(a, digits):  # the shortest text that reads back the same value: 9 digits for float32
            a = np.asarray(a)
            if a.dtype.kind in "iu":
                return a.tolist()
            return np.vectorize(lambda v: float(f"{v:.{digits}g}"), otypes=[float])(a).tolist()

        def state(d):
            return {k: short(v.numpy(), 9) for k, v in d.items()}

        return {"widths": list(widths), "n_classes": n_classes, "batch_size": self.batch_size,
                "final": state(self.model.state_dict()),
                "snapshots": {str(s): state(d) for s, d in self.snapshots.items()},
                "means": [short(m, 8) for m in self.means], "variances": [short(v, 8) for v in self.variances]}

    @classmethod
    def from_json(cls, saved: dict) -> "RecordedRun":
        """A run saved by :meth:`as_json`.

        Examples
        --------
        >>> from bnlib import data
        >>> X, y = data.moons(64, seed=0)
        >>> run = record_run(X, y, widths=[2, 4], n_classes=1, batch_size=8, steps=3, seed=0, at=[0, 3])
        >>> again = RecordedRun.from_json(run.as_json([2, 4], 1))
        >>> net, net2 = run.network(3, 0.5), again.network(3, 0.5)
        >>> bool(torch.equal(net[0].weight, net2[0].weight) and torch.allclose(net[1].running_var, net2[1].running_var))
        True
        >>> RecordedRun.from_json({"widths": [2, 4]})
        Traceback (most recent call last):
        ...
        ValueError: The 'saved' parameter of RecordedRun.from_json lacks ['batch_size', 'final', 'means', 'n_classes', 'snapshots', 'variances'].
        """
        from . import saved_state

        keys = {"widths", "n_classes", "batch_size", "final", "snapshots", "means", "variances"}
        if not isinstance(saved, dict) or not keys <= set(saved):
            missing = sorted(keys - set(saved)) if isinstance(saved, dict) else sorted(keys)
            raise ValueError(f"The 'saved' parameter of RecordedRun.from_json lacks {missing}.")
        model = network("bn", saved["widths"], n_classes=saved["n_classes"], seed=0)
        model.load_state_dict(saved_state(saved["final"]))
        snapshots = {int(s): saved_state(state) for s, state in saved["snapshots"].items()}
        return cls(model, snapshots, [np.asarray(m, dtype=np.float64) for m in saved["means"]],
                   [np.asarray(v, dtype=np.float64) for v in saved["variances"]], int(saved["batch_size"]))

    def network(self, step: int, momentum: float | None = 0.1) -> nn.Sequential:
        """The network after ``step`` steps, in eval mode, with the running statistics of ``momentum``.

        ``step`` must be a recorded step; the running statistics are :func:`running_statistics`
        of the first ``step`` batches (``momentum=None``: torch's cumulative average).
        """
        if step not in self.snapshots:
            raise ValueError(f"The 'step' parameter of RecordedRun.network must be a recorded step, one of "
                             f"{sorted(self.snapshots)}; got {step!r}.")
        net = copy.deepcopy(self.model)
        net.load_state_dict(self.snapshots[step])
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
        with torch.no_grad():
            for m, mean, var in zip(bns, self.means, self.variances):
                r_mean, r_var = running_statistics(mean[:step], var[:step], momentum)
                m.running_mean.copy_(torch.as_tensor(r_mean))
                m.running_var.copy_(torch.as_tensor(r_var))
        return net.eval()


def running_statistics(means, variances, momentum: float | None = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Torch's running mean and variance after the batch statistics ``means``, ``variances`` (steps, k).

    From the initial values 0 and 1, each step does ``r <- (1 - momentum) r + momentum s``;
    ``momentum=None`` is torch's cumulative average (the plain mean of the steps' statistics).

    Examples
    --------
    >>> running_statistics(np.array([[2.0], [4.0]]), np.array([[1.0], [1.0]]), 0.5)
    (array([2.5]), array([1.]))
    >>> running_statistics(np.array([[2.0], [4.0]]), np.array([[3.0], [5.0]]), None)
    (array([3.]), array([4.]))
    """
    M = np.asarray(means, dtype=np.float64)
    V = np.asarray(variances, dtype=np.float64)
    if M.ndim != 2 or V.shape != M.shape:
        raise ValueError(f"means and variances must be arrays of the same shape (steps, units); got {M.shape} "
                         f"and {V.shape}")
    if momentum is None:
        if not len(M):
            return np.zeros(M.shape[1]), np.ones(M.shape[1])
        return M.mean(0), V.mean(0)
    a = check_number(momentum, "momentum", "running_statistics", low=0, high=1)
    r_mean, r_var = np.zeros(M.shape[1]), np.ones(M.shape[1])
    for m, v in zip(M, V):
        r_mean = (1 - a) * r_mean + a * m
        r_var = (1 - a) * r_var + a * v
    return r_mean, r_var


def record_run(X, y, *, widths: Sequence[int], n_classes: int, batch_size: int, steps: int, seed: int,
               at: Sequence[int] = (), lr: float = 1e-2) -> RecordedRun:
    """Train a BN network (:func:`network` ``"bn"``) by steps and record every step's batch statistics.

    The book's training loop (:func:`bnlib.train.fit`, by ``steps`` of exactly ``batch_size``
    points, Adam) runs unchanged; forward hooks copy the statistics each ``BatchNorm1d`` computes in
    training mode, and a hook on the network keeps the weights before each step listed in ``at``.

    Examples
    --------
    >>> from bnlib import data
    >>> X, y = data.moons(64, seed=0)
    >>> run = record_run(X, y, widths=[2, 4], n_classes=1, batch_size=8, steps=5, seed=0, at=[0, 2, 5])
    >>> run.steps, sorted(run.snapshots)
    (5, [0, 2, 5])
    >>> m = run.network(5, momentum=0.1)        # torch's own running statistics, recomputed
    >>> bool(torch.allclose(m[1].running_mean, run.model[1].running_mean, atol=1e-6))
    True
    """
    func = "record_run"
    X = check_points(X, None, "X", func, at_least=2)
    steps = check_int(steps, "steps", func, at_least=0)
    at = sorted(set(check_ints(list(at), "at", func, at_least=0, min_len=0) if len(at) else []))
    if at and at[-1] > steps:
        raise ValueError(f"The 'at' parameter of {func} must list steps between 0 and steps = {steps}; got {at}.")
    net = network("bn", widths, n_classes=n_classes, seed=seed)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    means: list[list] = [[] for _ in bns]
    variances: list[list] = [[] for _ in bns]
    snapshots: dict = {}
    count = [0]

    def keep(module, inputs):
        if module.training:
            if count[0] in at:
                snapshots[count[0]] = copy.deepcopy(module.state_dict())
            count[0] += 1

    def stats(i):
        def hook(module, inputs, output):
            if module.training:
                u = inputs[0].detach().double()
                means[i].append(u.mean(0).numpy())
                variances[i].append(u.var(0, unbiased=True).numpy())
        return hook

    handles = [net.register_forward_pre_hook(keep)]
    handles += [m.register_forward_hook(stats(i)) for i, m in enumerate(bns)]
    try:
        fit(net, X, y, steps=steps, batch_size=batch_size, lr=lr, seed=seed, progress=False)
    finally:
        for h in handles:
            h.remove()
    if steps in at:
        snapshots[steps] = copy.deepcopy(net.state_dict())
    width = [m.num_features for m in bns]
    return RecordedRun(net, snapshots, [np.array(m).reshape(-1, k) for m, k in zip(means, width)],
                       [np.array(v).reshape(-1, k) for v, k in zip(variances, width)], batch_size)


def mode_experiment(X, y, X_test, y_test, *, widths: Sequence[int], box, batch_sizes: Sequence[int],
                    momenta: Sequence[float], seeds: Sequence[int], steps: int, lr: float = 1e-2,
                    at: Sequence[int] = (), progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Training mode, running statistics and precise statistics of the same trained BN networks.

    For each seed and batch size ``N`` one run (:func:`record_run`, a one-output classifier on 2-D
    inputs); for each momentum its running statistics recomputed. Distances are in units of the
    data's RMS radius (:func:`bnlib.geometry.rms_radius` of ``X``).

    Returns
    -------
    table : DataFrame
        One row per seed, batch size and momentum: ``accuracy_running``, ``accuracy_precise``,
        ``accuracy_batch`` (test accuracy with running statistics, with precise statistics, and in
        training mode with the statistics of one random training batch of ``N``), ``shift_running``
        and ``shift_batch`` (:func:`bnlib.geometry.boundary_displacement` of the decision boundary
        from the precise one, with running statistics and with the batch's statistics), and
        ``train_loss_precise``. The batch columns do not depend on the momentum.
    runs : dict
        ``(seed, N) -> RecordedRun`` (weights kept at the steps ``at`` and at the end).

    Examples
    --------
    >>> from bnlib import data
    >>> X, y = data.moons(64, seed=0)
    >>> t, runs = mode_experiment(X, y, X, y, widths=[2, 4], box=(-2, 3, -2, 2), batch_sizes=[8],
    ...                           momenta=[0.1, None], seeds=[0], steps=5, progress=False)
    >>> len(t), sorted(runs)
    (2, [(0, 8)])
    """
    func = "mode_experiment"
    X = check_points(X, 2, "X", func, at_least=2)
    X_test = check_points(X_test, 2, "X_test", func, at_least=1)
    box = check_box(box, "box", func)
    batch_sizes = check_ints(batch_sizes, "batch_sizes", func, at_least=2)
    seeds = check_seeds(seeds, "seeds", func)
    momenta = [None if m is None else check_number(m, "momenta", func, low=0, high=1) for m in momenta]
    radius = rms_radius(X)
    rows, runs = [], {}
    bar = tqdm(total=len(seeds) * len(batch_sizes), desc="modes", disable=not progress, leave=False,
               bar_format=_BAR)
    for seed in seeds:
        for N in batch_sizes:
            run = record_run(X, y, widths=widths, n_classes=1, batch_size=N, steps=steps, seed=seed,
                             at=sorted({*at, steps}), lr=lr)
            runs[seed, N] = run
            final = run.network(steps, 0.1)
            precise = precise_batchnorm(final, X).eval()
            reference = partition(precise, box).decision_boundary()
            B = X[np.random.default_rng(seed).choice(len(X), N, replace=False)]
            batch_part = partition(final, box, batch=B)
            shift_batch = boundary_displacement(batch_part.decision_boundary(), reference) / radius
            accuracy_batch = float((batch_part.predict(X_test) == np.asarray(y_test)).mean())
            train_loss = float(nn.functional.binary_cross_entropy_with_logits(
                precise(torch.as_tensor(X, dtype=torch.float32))[:, 0].detach(),
                torch.as_tensor(np.asarray(y), dtype=torch.float32)))
            for momentum in momenta:
                net = run.network(steps, momentum)
                rows.append(dict(
                    seed=seed, batch_size=N, momentum="cumulative" if momentum is None else momentum,
                    accuracy_running=accuracy(net, X_test, y_test), accuracy_precise=accuracy(precise, X_test, y_test),
                    accuracy_batch=accuracy_batch,
                    shift_running=boundary_displacement(partition(net, box).decision_boundary(), reference) / radius,
                    shift_batch=shift_batch, train_loss_precise=train_loss))
            bar.update()
    bar.close()
    return pd.DataFrame(rows), runs


# ----------------------------------------------------------------------------------------
# after training: where the learned gamma and beta put the hyperplanes


def train_arms(X, y, X_test, y_test, *, arms: Sequence[str], widths: Sequence[int], n_classes: int,
               seeds: Sequence[int], epochs: int, batch_size: int = 32, lr: float = 1e-2, groups: int = 4,
               progress: bool = True) -> tuple[dict, pd.DataFrame]:
    """Train every arm on every seed (:func:`network`, :func:`bnlib.train.fit`, same data order per seed).

    Returns
    -------
    models : dict
        ``(arm, seed) -> trained network``.
    table : DataFrame
        One row per arm and seed: ``test_accuracy`` (BN with running statistics) and
        ``test_accuracy_precise`` (BN with precise statistics; the same number for other arms).

    Examples
    --------
    >>> from bnlib import data
    >>> X, y = data.moons(64, seed=0)
    >>> models, t = train_arms(X, y, X, y, arms=["bn", "layernorm"], widths=[2, 4], n_classes=1, seeds=[0],
    ...                        epochs=1, progress=False)
    >>> sorted(models), t.columns.tolist()
    ([('bn', 0), ('layernorm', 0)], ['arm', 'seed', 'test_accuracy', 'test_accuracy_precise'])
    """
    func = "train_arms"
    arms = check_choices(arms, "arms", func, ARMS)
    seeds = check_seeds(seeds, "seeds", func)
    models, rows = {}, []
    bar = tqdm(total=len(arms) * len(seeds), desc="arms", disable=not progress, leave=False, bar_format=_BAR)
    for seed in seeds:
        for arm in arms:
            net = network(arm, widths, n_classes=n_classes, seed=seed, groups=groups)
            fit(net, X, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=False)
            net.eval()
            models[arm, seed] = net
            precise = precise_batchnorm(net, X) if arm == "bn" else net
            rows.append(dict(arm=arm, seed=seed, test_accuracy=accuracy(net, X_test, y_test),
                             test_accuracy_precise=accuracy(precise, X_test, y_test)))
            bar.update()
    bar.close()
    return models, pd.DataFrame(rows)


def unit_geometry(model: nn.Module, X, *, statistics: str = "running") -> pd.DataFrame:
    """Where each hidden unit's hyperplane lies relative to the data at its layer's input: one row per unit.

    Unit ``k`` of hidden layer ``l`` has the pre-activation ``h_k(z) = g <w_k, z> + c`` on its
    layer's input ``z`` (BN folded in, with the statistics in use), and its hyperplane is
    ``{h_k = 0}``. Measured on the layer's inputs of the points ``X``:

    * ``offset``: the distance from the centroid of the inputs to the hyperplane, in data-spread
      units (the RMS distance of the inputs to the parallel hyperplane through the centroid):
      ``|mean h_k| / sd h_k``. With BN and the statistics of ``X`` it is ``|beta_k / gamma_k|`` times
      ``sqrt((var + eps) / var)``, that is chapter 2's ruler up to ``eps``; a hyperplane through the
      centroid has offset 0.
    * ``minority``: the share of the points on the smaller side; ``cuts`` is
      ``minority >= CUT_SHARE``; ``near`` is ``offset <= NEAR_CENTROID``.

    Parameters
    ----------
    model
        An :func:`bnlib.MLP`-like network (``Linear``, ``BatchNorm1d``, leaky ReLU).
    X
        The data (n, d_in).
    statistics
        ``"running"`` (BN in eval mode) or ``"precise"`` (BN with the statistics of ``X``).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(200, 2)) + 3.0
    >>> g = unit_geometry(MLP([2, 3], batchnorm=True, seed=0), X, statistics="precise")
    >>> bool(g["offset"].max() < 1e-6), bool(g["cuts"].all())     # beta = 0: through the centroid
    (True, True)
    """
    func = "unit_geometry"
    statistics = check_choice(statistics, "statistics", func, ("running", "precise"))
    X = check_points(X, None, "X", func, at_least=2)
    layers = affine_layers(model, batch=X if statistics == "precise" else None)
    rows = []
    for layer, h in enumerate(preactivations(layers, X)[: sum(lay.has_activation for lay in layers)], start=1):
        sd = h.std(0)
        offset = np.abs(h.mean(0)) / np.where(sd > 0, sd, np.nan)
        above = (h > 0).mean(0)
        minority = np.minimum(above, 1 - above)
        for k in range(h.shape[1]):
            rows.append(dict(layer=layer, unit=k, offset=float(offset[k]), minority=float(minority[k]),
                             cuts=bool(minority[k] >= CUT_SHARE), near=bool(offset[k] <= NEAR_CENTROID)))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------
# other normalizations: distances along rays


def ray_distances(models: Mapping, X_fit, points, *, max_distance: float, directions: int = 16,
                  n_steps: int = 48, boundary: str = "units", progress: bool = True) -> pd.DataFrame:
    """Median distance from ``points`` to the nearest boundary along rays, per trained network.

    Each network of ``models`` (``(arm, seed) -> model``) is measured by
    :func:`bnlib.geometry.distance_by_bisection` (``directions`` rays per point, seeded by the
    network's seed); a BN network twice: with its running statistics (arm ``"bn"``) and with the
    statistics of ``X_fit`` (arm ``"bn_precise"``). Distances are in units of the RMS radius of
    ``X_fit``; a point whose rays meet no boundary within ``max_distance`` counts as
    ``max_distance``.

    Returns
    -------
    DataFrame
        One row per arm and seed: ``arm``, ``seed``, ``distance`` (the median over the points).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> models = {("layernorm", 0): network("layernorm", [2, 4], n_classes=1, seed=0)}
    >>> t = ray_distances(models, X, X[:5], max_distance=3.0, progress=False)
    >>> t["arm"].tolist(), bool(t["distance"].iloc[0] > 0)
    (['layernorm'], True)
    """
    func = "ray_distances"
    X_fit = check_points(X_fit, None, "X_fit", func, at_least=2)
    radius = rms_radius(X_fit)
    rows = []
    for (arm, seed), model in tqdm(models.items(), desc="distances", disable=not progress, leave=False,
                                   bar_format=_BAR):
        evaluations = [(arm, model)]
        if arm == "bn":
            evaluations.append(("bn_precise", precise_batchnorm(model, X_fit)))
        for name, net in evaluations:
            d = distance_by_bisection(net, points, directions, max_distance=max_distance, n_steps=n_steps,
                                      boundary=boundary, seed=seed)
            rows.append(dict(arm=name, seed=seed, distance=float(np.median(np.minimum(d, max_distance))) / radius))
    return pd.DataFrame(rows)


def compare(frame: pd.DataFrame, value: str, pairs: Sequence[tuple[str, str]], *, by: Sequence[str] = (),
            arm_column: str = "arm") -> pd.DataFrame:
    """Paired differences ``value(arm) - value(against)`` by seed for each pair: one family of comparisons.

    Returns :func:`bnlib.stats.paired_difference`'s rows with ``value``, ``arm`` and ``against``
    columns; pass the concatenation of every family the text asserts to
    :func:`bnlib.stats.holm_verdicts`.

    Examples
    --------
    >>> t = pd.DataFrame({"arm": ["a", "b"] * 3, "seed": [0, 0, 1, 1, 2, 2], "v": [1.0, 0.0, 2.0, 0.5, 1.5, 0.2]})
    >>> c = compare(t, "v", [("a", "b")])
    >>> c[["value", "arm", "against", "n"]].values.tolist()
    [['v', 'a', 'b', 3]]
    """
    out = []
    for arm, against in pairs:
        d = paired_difference(frame, value, arm, against, by=by, arm_column=arm_column)
        d.insert(0, "against", against)
        d.insert(0, "arm", arm)
        d.insert(0, "value", value)
        out.append(d)
    return pd.concat(out, ignore_index=True)


CONV_ARMS = ("plain", "plain_he", "bn")
"""The image networks' arms (:func:`conv_network`): ``"plain"`` (torch's default initialization, no
BN), ``"plain_he"`` (no BN, He-normal convolutions with zero biases: the baseline at its best) and
``"bn"`` (``BatchNorm2d`` after each convolution). ``"plain"`` and ``"bn"`` share their weights for a
seed."""

IMAGE_NETS = ("convnet", "resnet")
"""The image networks of :func:`conv_network`: the book's :func:`bnlib.nets.ConvNet` and
:func:`bnlib.nets.ResNet`, with their default sizes."""


def conv_network(arm: str, *, seed: int, net: str = "convnet") -> nn.Sequential:
    """The book's ConvNet (or small ResNet) for one of :data:`CONV_ARMS`, taking flat (n, 64) digits.

    An ``Unflatten`` to (n, 1, 8, 8) comes first, so the net reads the rows of
    :func:`bnlib.data.digits` directly.

    Parameters
    ----------
    arm
        One of :data:`CONV_ARMS`.
    seed
        Seed of the weights (:func:`bnlib.nets.ConvNet`'s or :func:`bnlib.nets.ResNet`'s); for
        ``"plain_he"`` every convolution is then redrawn He-normal under the same seed, with zero bias.
    net
        One of :data:`IMAGE_NETS`.

    Examples
    --------
    >>> net = conv_network("bn", seed=0)
    >>> net(torch.zeros(3, 64)).shape
    torch.Size([3, 10])
    >>> sum(isinstance(m, nn.Conv2d) for m in conv_network("plain_he", seed=0, net="resnet").modules())
    5
    """
    from ..nets import ConvNet, ResNet

    arm = check_choice(arm, "arm", "conv_network", CONV_ARMS)
    seed = check_seed(seed, "seed", "conv_network")
    net = check_choice(net, "net", "conv_network", IMAGE_NETS)
    model = (ConvNet if net == "convnet" else ResNet)(batchnorm=arm == "bn", seed=seed)
    if arm == "plain_he":
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for m in model.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    m.bias.zero_()
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), *model)


def precise_conv(model: nn.Module, X) -> nn.Module:
    """A copy of ``model`` (in ``eval()``) whose BN layers (any dimension) carry the statistics of all of ``X``.

    What :func:`bnlib.nets.precise_batchnorm` computes for ``BatchNorm1d``, done the way torch does it:
    running statistics reset, ``momentum=None``, one training-mode pass of ``X`` as a single batch
    (each BN layer's input normalised by the statistics of ``X`` in the layers before it).

    Examples
    --------
    >>> net = conv_network("bn", seed=0).eval()
    >>> X = np.random.default_rng(0).random((50, 64))
    >>> p = precise_conv(net, X)
    >>> u = p[:2](torch.tensor(X, dtype=torch.float32))  # the first convolution's output
    >>> bool(torch.allclose(p[2].running_mean, u.mean((0, 2, 3)), atol=1e-5))
    True
    """
    net = copy.deepcopy(model)
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        net(torch.as_tensor(np.asarray(X), dtype=torch.float32))
    return net.eval()


def conv_experiment(X, y, X_test, y_test, *, seeds: Sequence[int], arms: Sequence[str] = CONV_ARMS,
                    epochs: int = 5, batch_size: int = 32, lr: float = 1e-2, record: Sequence[int] = (1, 5),
                    progress: bool = True) -> pd.DataFrame:
    """Train the ConvNet's arms (:func:`conv_network`) on the digits with Adam, paired by seed.

    Every arm of a seed sees the same data order (a seeded permutation each epoch, batches of
    ``batch_size``, the last smaller one kept unless it holds one image). After each epoch in
    ``record`` the network is evaluated in ``eval()`` mode: test accuracy with running statistics
    and with precise statistics (:func:`precise_conv`; the same number without BN), and the training
    loss.

    Returns
    -------
    DataFrame
        One row per arm, seed and recorded epoch: ``arm, seed, epoch, test_accuracy,
        test_accuracy_precise, train_loss``.

    Examples
    --------
    >>> X, Xt, y, yt = __import__("bnlib").data.digits(seed=0)
    >>> t = conv_experiment(X[:200], y[:200], Xt[:50], yt[:50], seeds=[0], arms=["bn"], epochs=1, record=[1],
    ...                     progress=False)
    >>> t.columns.tolist()
    ['arm', 'seed', 'epoch', 'test_accuracy', 'test_accuracy_precise', 'train_loss']
    """
    func = "conv_experiment"
    arms = check_choices(arms, "arms", func, CONV_ARMS)
    seeds = check_seeds(seeds, "seeds", func)
    epochs = check_int(epochs, "epochs", func, at_least=1)
    Xtr = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    ytr = torch.as_tensor(np.asarray(y), dtype=torch.long)
    rows = []
    bar = tqdm(total=len(arms) * len(seeds), desc="conv", disable=not progress, leave=False, bar_format=_BAR)
    for seed in seeds:
        for arm in arms:
            def evaluate(epoch, net, arm=arm, seed=seed):
                if epoch in record:
                    precise = precise_conv(net, X) if arm == "bn" else net
                    with torch.no_grad():
                        loss = float(nn.functional.cross_entropy(precise(Xtr), ytr))
                    rows.append(dict(arm=arm, seed=seed, epoch=epoch, test_accuracy=accuracy(net, X_test, y_test),
                                     test_accuracy_precise=accuracy(precise, X_test, y_test), train_loss=loss))

            train_images(conv_network(arm, seed=seed), X, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                         after_epoch=evaluate)
            bar.update()
    bar.close()
    return pd.DataFrame(rows)


def train_images(model: nn.Module, X, y, *, epochs: int, batch_size: int = 32, lr: float = 1e-2, seed: int,
                 after_epoch=None) -> nn.Module:
    """Train an image network (flat (n, 64) inputs, class labels) with Adam and cross-entropy, in place.

    Each epoch a seeded permutation of ``X`` (a ``torch.Generator`` seeded with ``seed``), cut into
    batches of ``batch_size`` (the last, smaller one kept unless it holds one image: BN needs two),
    so every arm of a seed sees the same data order. After each epoch the model is put in ``eval()``
    and ``after_epoch(epoch, model)`` is called (epochs count from 1).

    Returns
    -------
    nn.Module
        ``model``, trained, in ``eval()`` mode (BN with its running statistics, momentum 0.1).

    Examples
    --------
    >>> X, Xt, y, yt = __import__("bnlib").data.digits(seed=0)
    >>> seen = []
    >>> net = train_images(conv_network("bn", seed=0), X[:100], y[:100], epochs=2, seed=0,
    ...                    after_epoch=lambda e, m: seen.append((e, m.training)))
    >>> seen, net.training
    ([(1, False), (2, False)], False)
    """
    func = "train_images"
    epochs = check_int(epochs, "epochs", func, at_least=0)
    batch_size = check_int(batch_size, "batch_size", func, at_least=2)
    seed = check_seed(seed, "seed", func)
    Xtr = torch.as_tensor(check_points(X, None, "X", func, at_least=2), dtype=torch.float32)
    ytr = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if ytr.shape != (len(Xtr),):
        raise ValueError(f"The 'y' parameter of {func} must hold one label per row of X ({len(Xtr)}); "
                         f"got shape {tuple(ytr.shape)}.")
    n = len(Xtr)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            if len(idx) < 2:
                continue
            opt.zero_grad()
            nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx]).backward()
            opt.step()
        model.eval()
        if after_epoch is not None:
            after_epoch(epoch, model)
    return model.eval()


# ----------------------------------------------------------------------------------------
# planes through three images: distances and region counts


def plane_triples(labels, n: int, *, seed: int) -> np.ndarray:
    """``n`` triples of image indices, each of three different classes, drawn with ``seed``.

    For each triple three distinct classes are drawn, then one image of each class (all draws
    uniform, with ``numpy.random.default_rng(seed)``); triples may share an image.

    Returns
    -------
    ndarray of int, (n, 3)

    Examples
    --------
    >>> y = np.array([0, 0, 1, 1, 2, 2, 3])
    >>> t = plane_triples(y, 4, seed=0)
    >>> t.shape, all(len(set(y[row])) == 3 for row in t)
    ((4, 3), True)
    """
    func = "plane_triples"
    labels = np.asarray(labels)
    n = check_int(n, "n", func, at_least=1)
    seed = check_seed(seed, "seed", func)
    classes = np.unique(labels)
    if labels.ndim != 1 or len(classes) < 3:
        raise ValueError(f"The 'labels' parameter of {func} must be a 1-D array of at least 3 classes; "
                         f"got shape {labels.shape} with {len(classes)} classes.")
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3), dtype=np.int64)
    for i in range(n):
        for j, c in enumerate(rng.choice(classes, 3, replace=False)):
            out[i, j] = rng.choice(np.flatnonzero(labels == c))
    return out


def _segment_distances(p: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance from the point ``p`` (2,) to each segment of ``points`` (k, 2, 2)."""
    p0, d = points[:, 0], points[:, 1] - points[:, 0]
    t = np.clip(((p - p0) * d).sum(1) / np.maximum((d * d).sum(1), 1e-300), 0.0, 1.0)
    return np.linalg.norm(p - p0 - t[:, None] * d, axis=1)


def plane_measures(part, points=None) -> pd.DataFrame:
    """Distances from points of a plane to the nearest ReLU boundary, and the plane's region count.

    Measured on an exact partition of a plane (:func:`bnlib.partition` with ``plane=``), at
    ``points`` (plane coordinates, (n, 2); default: the plane's anchors, the images it was made
    through). The boundaries of max-pooling layers are left out of the distance (an image usually
    lies *on* one: blank patches tie a window's maximum), and so are the ReLU units whose boundary
    passes through the point (within the engine's tolerance, :data:`bnlib.partition.TOLERANCE` times
    the box diagonal): with zero biases, a unit that sees only blank pixels at an image reads exactly
    0 there. Those are counted instead.

    Returns
    -------
    DataFrame
        One row per point: ``point`` (its index), ``distance`` (to the nearest segment of a ReLU
        unit that does not pass through the point; ``inf`` if none), ``ties`` (the number of ReLU
        boundaries that pass through the point), ``on_pool`` (whether the point lies on a
        max-pooling boundary), ``regions`` (the partition's region count) and ``area`` (the box's).
        Boundaries of several units that coincide (the same line in the plane) are drawn, and
        counted in ``ties``, once.

    Examples
    --------
    >>> from bnlib import Plane, partition
    >>> from bnlib.nets import ConvNet
    >>> images = np.random.default_rng(0).uniform(size=(3, 1, 8, 8))
    >>> part = partition(ConvNet(seed=0), plane=Plane.through(images))
    >>> m = plane_measures(part)
    >>> m.columns.tolist(), len(m), bool((m["distance"] > 0).all())
    (['point', 'distance', 'ties', 'on_pool', 'regions', 'area'], 3, True)
    """
    from ..nets import Activation, MaxPool
    from ..partition import TOLERANCE, _diameter

    func = "plane_measures"
    if points is None:
        if part.plane is None or part.plane.anchors is None:
            raise ValueError(f"The 'points' parameter of {func} is needed for a partition without a plane's anchors.")
        points = part.plane.anchors
    pts = check_points(points, 2, "points", func, at_least=1)
    if part.network is not None:  # layers in order: activations and max-pools
        kinds = [isinstance(op, MaxPool) for op in part.network.ops if isinstance(op, (Activation, MaxPool))]
    else:
        kinds = [False] * part.depth
    pool_layers = [i + 1 for i, is_pool in enumerate(kinds) if is_pool]
    seg = part.boundaries()
    relu = ~np.isin(seg.layer, pool_layers)
    relu_pts, pool_pts = seg.points[relu], seg.points[~relu]
    # one key per ReLU unit: (layer, unit)
    _, unit_key = np.unique(np.stack([seg.layer[relu], seg.unit[relu]], 1), axis=0, return_inverse=True)
    unit_key = unit_key.ravel()
    tol = TOLERANCE * _diameter(part.box)
    xmin, xmax, ymin, ymax = part.box
    rows = []
    for i, p in enumerate(pts):
        d = _segment_distances(p, relu_pts)
        nearest = np.full(unit_key.max() + 1 if len(unit_key) else 0, np.inf)
        np.minimum.at(nearest, unit_key, d)
        through = nearest <= tol
        keep = ~through[unit_key]
        on_pool = bool(len(pool_pts)) and bool(_segment_distances(p, pool_pts).min() <= tol)
        rows.append(dict(point=i, distance=float(d[keep].min()) if keep.any() else np.inf, ties=int(through.sum()),
                         on_pool=on_pool, regions=part.n_regions, area=float((xmax - xmin) * (ymax - ymin))))
    return pd.DataFrame(rows)


PLANE_ARMS = ("plain", "plain_he", "bn", "bn_precise")
"""The arms measured on planes (:func:`plane_experiment`): :data:`CONV_ARMS`, with BN evaluated with its
running statistics (``"bn"``, trained networks only: an untrained network's running statistics are
torch's initial 0 and 1) and with precise statistics of the training images (``"bn_precise"``,
:func:`precise_conv`)."""


def plane_experiment(X, y, X_test, y_test, *, seeds: Sequence[int], triples: int = 5,
                     nets: Sequence[str] = IMAGE_NETS, states: Sequence[str] = ("untrained", "trained"),
                     half_width: float = 0.5, epochs: int = 5, batch_size: int = 32, lr: float = 1e-2,
                     progress: bool = True) -> pd.DataFrame:
    """Exact partitions of planes through test images, near each image, for untrained and trained image networks.

    For each seed, :func:`plane_triples` draws ``triples`` triples of test images of three classes
    (with that seed), and every net and arm of the seed is measured on the same planes
    (:meth:`bnlib.Plane.through` the three images): around each image, the exact partition of the
    square of half-width ``half_width`` (pixel-space units) centred on it, measured by
    :func:`plane_measures` (its regions, and the image's distance to the nearest ReLU boundary).
    Each net of ``nets`` and each arm of :data:`CONV_ARMS` is measured in each of ``states``:
    ``"untrained"`` and ``"trained"``, after ``epochs`` epochs of :func:`train_images` (the training
    of :func:`conv_experiment`), in ``eval()`` mode; BN with precise statistics of ``X``
    (:func:`precise_conv`) and, trained, also with its running statistics (:data:`PLANE_ARMS`).

    Returns
    -------
    DataFrame
        One row per net, state, arm, seed, triple and image: ``net``, ``trained`` (bool), ``arm``,
        ``seed``, ``triple``, ``point`` (the image's place in the triple), ``image`` (its index in
        ``X_test``), ``label``, ``distance``, ``ties``, ``on_pool``, ``regions`` (in the square
        around the image), ``area`` (the square's) as :func:`plane_measures` gives them, and
        ``test_accuracy`` of the network as measured. A distance above ``half_width`` would only be
        a lower bound (the square holds the disc of that radius, no more); none is.

    Examples
    --------
    >>> X, Xt, y, yt = __import__("bnlib").data.digits(seed=0)
    >>> t = plane_experiment(X[:100], y[:100], Xt, yt, seeds=[0], triples=1, nets=["convnet"], epochs=1,
    ...                      half_width=0.1, progress=False)
    >>> len(t), sorted(t["arm"].unique()), bool((t["distance"] < 0.1).all())
    (21, ['bn', 'bn_precise', 'plain', 'plain_he'], True)
    """
    func = "plane_experiment"
    seeds = check_seeds(seeds, "seeds", func)
    triples = check_int(triples, "triples", func, at_least=1)
    nets = check_choices(nets, "nets", func, IMAGE_NETS)
    states = check_choices(states, "states", func, ("untrained", "trained"))
    half_width = check_number(half_width, "half_width", func, low=0, low_open=True)
    epochs = check_int(epochs, "epochs", func, at_least=1)
    X_test = check_points(X_test, 64, "X_test", func, at_least=3)
    y_test = np.asarray(y_test)
    rows = []
    bar = tqdm(total=len(seeds) * len(nets) * len(CONV_ARMS), desc="planes", disable=not progress, leave=False,
               bar_format=_BAR)
    for seed in seeds:
        planes = [(t, Plane.through(X_test[idx].reshape(3, 1, 8, 8)), idx)
                  for t, idx in enumerate(plane_triples(y_test, triples, seed=seed))]
        for net_name in nets:
            for arm in CONV_ARMS:
                measured = []
                if "untrained" in states:
                    measured.append((False, "bn_precise" if arm == "bn" else arm,
                                     conv_network(arm, seed=seed, net=net_name).eval()))
                if "trained" in states:
                    trained = train_images(conv_network(arm, seed=seed, net=net_name), X, y, epochs=epochs,
                                           batch_size=batch_size, lr=lr, seed=seed)
                    measured += [(True, arm, trained)] + ([(True, "bn_precise", trained)] if arm == "bn" else [])
                for is_trained, name, model in measured:
                    model = precise_conv(model, X) if name == "bn_precise" else model
                    acc = accuracy(model, X_test, y_test)
                    for t, plane, idx in planes:
                        for point, (a, b) in enumerate(plane.anchors):
                            box = (a - half_width, a + half_width, b - half_width, b + half_width)
                            part = partition(model[1:], box, plane=plane)  # the net after its Unflatten
                            m = plane_measures(part, [(a, b)]).iloc[0].to_dict()
                            rows.append(dict(net=net_name, trained=is_trained, arm=name, seed=seed, triple=t,
                                             point=point, image=int(idx[point]), label=int(y_test[idx[point]]),
                                             **{k: v for k, v in m.items() if k != "point"}, test_accuracy=acc))
                bar.update()
    bar.close()
    return pd.DataFrame(rows)
