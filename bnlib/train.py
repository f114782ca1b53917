"""Seeded training: one loop for every experiment of the book.

:func:`fit` trains a torch model with mini-batch SGD or Adam, by epochs or by steps, in a data
order fixed by its seed, and returns its history. The same seed gives the same history, bit for
bit, on 1 or 2 threads (the models are small; torch's CPU kernels are deterministic for
them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ._validation import check_choice, check_int, check_seed
from .nets import has_batchnorm, precise_batchnorm

__all__ = ["History", "fit", "accuracy", "predict", "classification_loss", "make_optimizer"]


@dataclass
class History:
    """Per-epoch record of a training run (epoch 0 is before any step).

    Every number is measured in eval mode. For a network with BN, ``train_loss``,
    ``train_accuracy`` and ``test_accuracy`` use its running statistics (what ``model.eval()``
    does), and the ``*_precise`` columns use the statistics of the whole training set
    (:func:`bnlib.nets.precise_batchnorm`); without BN the ``*_precise`` columns are NaN.
    """

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    train_loss_precise: list = field(default_factory=list)
    train_accuracy_precise: list = field(default_factory=list)
    test_accuracy_precise: list = field(default_factory=list)
    steps: int = 0

    def as_arrays(self) -> dict:
        """The history as a dict of numpy arrays."""
        return {k: np.asarray(v) for k, v in self.__dict__.items() if isinstance(v, list)}


def _tensor(X, name: str, dtype=torch.float32) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(X), dtype=dtype)
    if dtype == torch.float32 and (t.ndim != 2 or not torch.isfinite(t).all()):
        raise ValueError(f"{name} must be a finite (n, d) array; got shape {tuple(t.shape)}")
    return t


def classification_loss(model_out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logistic loss for one output (its sign is the class), cross-entropy for several."""
    if model_out.shape[1] == 1:
        return nn.functional.binary_cross_entropy_with_logits(model_out[:, 0], y.float())
    return nn.functional.cross_entropy(model_out, y)


def make_optimizer(model: nn.Module, name: str, lr: float) -> torch.optim.Optimizer:
    """``"adam"`` or ``"sgd"`` (plain, no momentum) over the model's parameters."""
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {name!r}")


def predict(model: nn.Module, X) -> np.ndarray:
    """Predicted classes (sign of a single output, argmax otherwise), in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(_tensor(X, "X"))
    model.train(was_training)
    return (out[:, 0] > 0).long().numpy() if out.shape[1] == 1 else out.argmax(1).numpy()


def accuracy(model: nn.Module, X, y) -> float:
    """Fraction of correct predictions, in eval mode (BN uses its running statistics; for the
    statistics of a whole data set, evaluate :func:`bnlib.nets.precise_batchnorm` of the model)."""
    return float((predict(model, X) == np.asarray(y)).mean())


def _evaluate(model, X, y):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        loss = float(classification_loss(model(X), y))
    model.train(was_training)
    return loss


def fit(
    model: nn.Module,
    X,
    y,
    *,
    epochs: int | None = 50,
    steps: int | None = None,
    batch_size: int | None = 32,
    lr: float = 1e-2,
    optimizer: str = "adam",
    seed: int = 0,
    X_test=None,
    y_test=None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` in place on (X, y) and return its :class:`History`: the book's one training loop.

    Two ways to say how long: ``epochs`` (passes over the data, the last batch of an epoch may be
    smaller) or ``steps`` (exactly that many optimizer steps of exactly ``batch_size`` samples:
    batches are consecutive slices of a fresh seeded permutation each epoch, the last incomplete
    one dropped). Give ``steps`` to train by steps (``epochs`` is then ignored).

    Parameters
    ----------
    model
        A classifier: one output (binary, logistic loss) or one output per class (cross-entropy).
    X, y
        Training inputs (n, d) and integer labels (n,).
    epochs
        Passes over the data (the history records every epoch).
    steps
        Number of optimizer steps (the history records the start and the end).
    batch_size
        Mini-batch size; None for full batch. By epochs, the last, smaller batch of an epoch is
        dropped when it would hold a single sample (BatchNorm cannot normalise one sample).
    lr, optimizer
        Learning rate; ``"adam"`` or ``"sgd"`` (plain, no momentum).
    seed
        Seeds the data order (a private ``torch.Generator``) and the random draws of the model's
        own layers during training (dropout masks: torch's global generator is seeded inside a
        forked state, so the caller's is left as it was); weights are the model's own.
    X_test, y_test
        Optional held-out set, scored at every record.

    Examples
    --------
    >>> from bnlib import MLP, data
    >>> X, y = data.moons(200, seed=0)
    >>> h1 = fit(MLP([2, 16, 16], n_classes=1, seed=0), X, y, epochs=5, seed=0, progress=False)
    >>> h2 = fit(MLP([2, 16, 16], n_classes=1, seed=0), X, y, epochs=5, seed=0, progress=False)
    >>> h1.train_loss == h2.train_loss, len(h1.epoch)
    (True, 6)
    >>> fit(MLP([2, 8], n_classes=1, seed=0), X, y, steps=7, batch_size=64, progress=False).steps
    7
    """
    func = "fit"
    Xt = _tensor(X, "X")
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if len(Xt) != len(yt):
        raise ValueError(f"X and y must have the same length; got {len(Xt)} and {len(yt)}")
    n = len(Xt)
    by_steps = steps is not None
    if by_steps:
        steps = check_int(steps, "steps", func, at_least=0)
    else:
        epochs = check_int(epochs, "epochs", func, at_least=0)
    has_bn = has_batchnorm(model)
    bs = n if batch_size is None else check_int(batch_size, "batch_size", func, at_least=2 if has_bn else 1)
    if by_steps and bs > n:
        raise ValueError(f"The 'batch_size' parameter of fit must be at most the number of samples ({n}); got {bs}.")
    if has_bn and min(bs, n) < 2:
        raise ValueError("a model with BatchNorm needs batches of at least 2 samples")
    check_choice(optimizer, "optimizer", func, ("adam", "sgd"))
    seed = check_seed(seed, "seed", func)
    opt = make_optimizer(model, optimizer, lr)
    Xte = yte = None
    if X_test is not None:
        Xte, yte = _tensor(X_test, "X_test"), torch.as_tensor(np.asarray(y_test), dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    hist = History()

    def record(epoch):
        hist.epoch.append(epoch)
        hist.train_loss.append(_evaluate(model, Xt, yt))
        hist.train_accuracy.append(accuracy(model, Xt, yt.numpy()))
        hist.test_accuracy.append(accuracy(model, Xte, yte.numpy()) if Xte is not None else float("nan"))
        nan = float("nan")
        precise = precise_batchnorm(model, Xt.numpy()) if has_bn else None
        hist.train_loss_precise.append(_evaluate(precise, Xt, yt) if has_bn else nan)
        hist.train_accuracy_precise.append(accuracy(precise, Xt, yt.numpy()) if has_bn else nan)
        hist.test_accuracy_precise.append(accuracy(precise, Xte, yte.numpy()) if has_bn and Xte is not None else nan)

    def step(idx):
        opt.zero_grad()
        classification_loss(model(Xt[idx]), yt[idx]).backward()
        opt.step()
        hist.steps += 1

    record(0)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout's masks, and any other draw of torch's global generator
        if by_steps:
            bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False)
            epoch = 0
            while hist.steps < steps:
                order = torch.randperm(n, generator=gen)
                for start in range(0, n - bs + 1, bs):
                    if hist.steps == steps:
                        break
                    step(order[start : start + bs])
                    bar.update()
                epoch += 1
            bar.close()
            record(epoch)
        else:
            for epoch in tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False):
                order = torch.randperm(n, generator=gen)
                for start in range(0, n, bs):
                    idx = order[start : start + bs]
                    if has_bn and len(idx) < 2:
                        continue
                    step(idx)
                record(epoch)
    return hist
