"""Checks of the arguments of bnlib's public functions: one place, one message format.

Every check raises ``ValueError`` in scikit-learn's manner, naming the parameter, the function
and what was expected, then what came::

    The 'seeds' parameter of layer_experiment must be a sequence of non-negative integers; got [1.5].

The rules are the same everywhere: an integer parameter takes a Python or numpy integer, or a
float with an integral value (3.0 is 3; 1.5 is refused, never truncated); booleans are not
integers; seeds are integers >= 0; numbers must be finite.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Sequence

import numpy as np
import torch


def _fail(name: str, func: str, expected: str, got) -> ValueError:
    where = f" of {func}" if func else ""
    return ValueError(f"The {name!r} parameter{where} must be {expected}; got {got!r}.")


def _as_int(value):
    """The integer ``value`` stands for, or None when it is not one (1.5, True, 'a')."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real) and np.isfinite(float(value)) and float(value) == int(value):
        return int(value)
    return None


def _bounds(at_least, at_most) -> str:
    if at_least is not None and at_most is not None:
        return f" between {at_least} and {at_most}"
    if at_least == 0:
        return " >= 0"
    if at_least is not None:
        return f" >= {at_least}"
    if at_most is not None:
        return f" <= {at_most}"
    return ""


def check_int(value, name: str, func: str = "", *, at_least: int | None = None, at_most: int | None = None) -> int:
    """``value`` as an int within the bounds, or ``ValueError``."""
    v = _as_int(value)
    if v is None or (at_least is not None and v < at_least) or (at_most is not None and v > at_most):
        raise _fail(name, func, "an integer" + _bounds(at_least, at_most), value)
    return v


def check_optional_int(value, name: str, func: str = "", *, at_least: int | None = None) -> int | None:
    """None, or ``value`` as an int >= ``at_least``."""
    if value is None:
        return None
    v = _as_int(value)
    if v is None or (at_least is not None and v < at_least):
        raise _fail(name, func, "None or an integer" + _bounds(at_least, None), value)
    return v


def check_ints(values, name: str, func: str = "", *, at_least: int | None = None, min_len: int = 1) -> list[int]:
    """A non-empty sequence of integers >= ``at_least``, as a list of ints."""
    expected = f"a sequence of at least {min_len} integers" + _bounds(at_least, None)
    if isinstance(values, (str, bytes)) or np.ndim(values) == 0 and not hasattr(values, "__iter__"):
        raise _fail(name, func, expected, values)
    try:
        items = list(values)
    except TypeError:
        raise _fail(name, func, expected, values) from None
    out = [_as_int(v) for v in items]
    if len(out) < min_len or any(v is None or (at_least is not None and v < at_least) for v in out):
        raise _fail(name, func, expected, items)
    return out


def check_seeds(seeds, name: str = "seeds", func: str = "") -> list[int]:
    """A non-empty sequence of non-negative integers (seeds, or epochs to snapshot)."""
    try:
        return check_ints(seeds, name, func, at_least=0)
    except ValueError:
        items = seeds if isinstance(seeds, (str, bytes)) else _listed(seeds)
        raise _fail(name, func, "a non-empty sequence of non-negative integers", items) from None


def _listed(values):
    try:
        return list(values)
    except TypeError:
        return values


def check_seed(value, name: str = "seed", func: str = "") -> int:
    """One seed: an integer >= 0."""
    return check_int(value, name, func, at_least=0)


def check_number(
    value,
    name: str,
    func: str = "",
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in the interval given by ``low``/``high`` (open or closed ends)."""
    ok = isinstance(value, (Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))
    v = float(value) if ok else float("nan")
    if ok and np.isfinite(v):
        ok = (low is None or (v > low if low_open else v >= low)) and (
            high is None or (v < high if high_open else v <= high)
        )
    else:
        ok = False
    if not ok:
        if low is not None and high is not None:
            rng = f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            rng = f" {'>' if low_open else '>='} {low}"
        elif high is not None:
            rng = f" {'<' if high_open else '<='} {high}"
        else:
            rng = ""
        raise _fail(name, func, "a finite number" + rng, value)
    return v


def check_choice(value, name: str, func: str, choices: Sequence):
    """``value`` if it is one of ``choices``."""
    if isinstance(value, (list, dict, set, np.ndarray)) or value not in tuple(choices):
        raise _fail(name, func, f"one of {tuple(choices)}", value)
    return value


def check_choices(values, name: str, func: str, choices: Sequence) -> list:
    """A non-empty sequence whose every item is one of ``choices``."""
    items = [values] if isinstance(values, str) else _listed(values)
    if not isinstance(items, list) or not items or any(
        isinstance(v, (list, dict, set, np.ndarray)) or v not in tuple(choices) for v in items
    ):
        raise _fail(name, func, f"a non-empty sequence of items of {tuple(choices)}", values)
    return items


def check_points(points, dim: int | None, name: str = "points", func: str = "", *, at_least: int = 0) -> np.ndarray:
    """``points`` as a finite float64 array of shape (n, dim) with n >= ``at_least``.

    ``dim=None`` accepts any number of columns.
    """
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(name, func, f"an array of shape (n, {dim if dim is not None else 'd'}) of numbers",
                    type(points).__name__) from None
    shape = f"(n, {dim if dim is not None else 'd'})"
    if arr.ndim != 2 or (dim is not None and arr.shape[1] != dim):
        raise ValueError(f"The {name!r} parameter{' of ' + func if func else ''} must be an array of shape {shape}; "
                         f"got shape {arr.shape}.")
    if len(arr) < at_least:
        raise ValueError(f"The {name!r} parameter{' of ' + func if func else ''} must be an array of at least "
                         f"{at_least} points; got {len(arr)}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"The {name!r} parameter{' of ' + func if func else ''} must be an array of finite numbers; "
                         f"got {int(np.sum(~np.isfinite(arr)))} NaN or infinite values.")
    return arr


def check_box(box, name: str = "box", func: str = "") -> tuple[float, float, float, float]:
    """``(xmin, xmax, ymin, ymax)`` with finite numbers, xmin < xmax and ymin < ymax."""
    try:
        b = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise _fail(name, func, "(xmin, xmax, ymin, ymax), four finite numbers", box) from None
    if len(b) != 4 or not np.all(np.isfinite(b)) or not (b[0] < b[1] and b[2] < b[3]):
        raise _fail(name, func, "(xmin, xmax, ymin, ymax) with xmin < xmax and ymin < ymax, all finite", box)
    return b
