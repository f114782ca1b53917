"""Statistics over seeds, and the tables the chapters show.

Experiments return tidy tables: one row per run (seed, arm, setting), as a dict of equal-length
numpy arrays or a pandas ``DataFrame``. This module summarises them:

* :func:`mean_interval`: the mean of per-seed values and a bootstrap (BCa) interval for it, which
  respects the range of the quantity;
* :func:`summarize`: that summary for every group of a table (``by`` columns), plus the
  spread (std, min, max);
* :func:`paired_difference`: the difference between two arms *paired by seed* (same initial
  weights, same data order), summarised per group;
* :func:`sign_flip_pvalue`, :func:`holm` and :func:`verdict`: a p-value for a paired difference,
  Holm's correction across the comparisons a chapter asserts, and what an interval shows
  ("inconclusive" unless an equivalence margin is met); :func:`holm_verdicts` does both for a
  whole family of comparisons;
* :func:`loglog_slope`: the exponent of a power law;
* :func:`table`: a :class:`Table`, which the book renders as an HTML table (pandas Styler) and
  a terminal as aligned text; :func:`interval_text` writes "mean [lo, hi]".
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from ._validation import check_number

__all__ = [
    "as_frame",
    "mean_interval",
    "summarize",
    "paired_difference",
    "sign_flip_pvalue",
    "holm",
    "verdict",
    "holm_verdicts",
    "loglog_slope",
    "interval_text",
    "Table",
    "table",
]


def as_frame(data, name: str = "table") -> pd.DataFrame:
    """A table (dict of equal-length arrays, or DataFrame) as a ``DataFrame`` (a copy)."""
    if isinstance(data, pd.DataFrame):
        return data.copy()
    if not isinstance(data, dict):
        raise ValueError(f"The {name!r} parameter must be a dict of equal-length arrays or a DataFrame; "
                         f"got {type(data).__name__}.")
    lengths = {k: len(np.atleast_1d(v)) for k, v in data.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"The {name!r} parameter must hold columns of equal length; got {lengths}.")
    return pd.DataFrame({k: np.asarray(v) for k, v in data.items()})


def _columns(frame: pd.DataFrame, names: Sequence[str], func: str) -> None:
    for key in names:
        if key not in frame.columns:
            raise ValueError(f"The table given to {func} has no column {key!r}; its columns are "
                             f"{sorted(map(str, frame.columns))}.")


def mean_interval(values, level: float = 0.95, *, n_resamples: int = 9999, seed: int = 0) -> tuple[float, float, float]:
    """Mean of per-seed values and a bootstrap interval for it (BCa): ``(mean, lo, hi)``.

    The interval is the bias-corrected and accelerated bootstrap over the values (seeds are the
    unit of replication), seeded so the same values give the same interval, at a level widened for
    small samples as Hesterberg (2015) proposes (its coverage on 10 skewed values is then close to
    the nominal one; tests/unit/test_stats.py measures it). It is made of means
    of resampled values, so it never leaves the range of the values: an accuracy interval stays
    in [0, 1], a loss or distance interval above 0 (a Student-t interval of 10 skewed, bounded
    values does not). When every value is the same there is no spread to resample: the interval
    is that value, ``(v, v, v)`` (the tables say "all seeds").

    Examples
    --------
    >>> m, lo, hi = mean_interval([0.8, 1.0, 1.0, 0.9, 1.0, 1.0, 0.85, 0.97, 1.0, 1.0])
    >>> round(m, 3), 0.8 <= lo < m < hi <= 1.0
    (0.952, True)
    >>> mean_interval([1.0, 1.0, 1.0])
    (1.0, 1.0, 1.0)
    """
    from scipy import stats

    v = np.asarray(values, dtype=np.float64).ravel()
    if len(v) < 2:
        raise ValueError(f"an interval needs at least 2 values; got {len(v)}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"values must be finite to average; got {int(np.sum(~np.isfinite(v)))} non-finite")
    level = check_number(level, "level", "mean_interval", low=0, high=1, low_open=True, high_open=True)
    m = float(v.mean())
    if np.ptp(v) == 0:
        return m, m, m
    # Hesterberg's expansion: a bootstrap interval is too narrow for few values (it ignores that the
    # spread itself is estimated); widen the level so its normal quantile is sqrt(n / (n - 1)) times
    # Student's t quantile. At n = 10, level 0.95 resamples at 0.983.
    n = len(v)
    wide = 2 * stats.norm.cdf(np.sqrt(n / (n - 1)) * stats.t.ppf(0.5 + level / 2, n - 1)) - 1
    with warnings.catch_warnings():  # a degenerate BCa (e.g. one value apart) falls back below
        warnings.simplefilter("ignore")
        res = stats.bootstrap((v,), np.mean, confidence_level=wide, n_resamples=n_resamples, method="BCa",
                              random_state=np.random.default_rng(seed), vectorized=True)
    lo, hi = (float(x) for x in res.confidence_interval)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa undefined (e.g. one distinct outlier): percentile
        lo, hi = (float(x) for x in np.percentile(
            np.random.default_rng(seed).choice(v, (n_resamples, n)).mean(1), [50 * (1 - wide), 50 * (1 + wide)]))
    # the resampled means lie in [min, max]; clip the float rounding of their interpolation
    return m, max(lo, float(v.min())), min(hi, float(v.max()))


def sign_flip_pvalue(differences) -> float:
    """Two-sided p-value of "the mean paired difference is 0": an exact sign-flip permutation test.

    Under the null each seed's difference is as likely to have either sign; the p-value is the
    share of the ``2^n`` sign patterns (all of them for n <= 16; else 2^16 seeded draws, counted
    as ``(b + 1) / (m + 1)`` so that it is never 0) whose mean is at least as far from 0 as the
    observed one. No normality is assumed.

    Examples
    --------
    >>> sign_flip_pvalue([0.1, 0.2, 0.15, 0.3, 0.25])     # all five positive: 2 of 32 patterns
    0.0625
    """
    d = np.asarray(differences, dtype=np.float64).ravel()
    if len(d) < 1 or not np.all(np.isfinite(d)):
        raise ValueError("sign_flip_pvalue needs at least one finite difference")
    n = len(d)
    if n <= 16:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    else:
        signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(2**16, n))
    observed = abs(d.mean())
    extreme = np.abs(signs @ d) / n >= observed - 1e-12 * max(1.0, observed)
    if n <= 16:
        return float(np.mean(extreme))
    return float((extreme.sum() + 1) / (len(extreme) + 1))  # a Monte Carlo p-value is never 0


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of p-values (family-wise error rate), in the given order.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("p-values must lie in [0, 1]")
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def verdict(lo: float, hi: float, *, margin: float | None = None, p_adjusted: float | None = None,
            alpha: float = 0.05) -> str:
    """What an interval of a difference shows: ``"positive"``, ``"negative"``, ``"equivalent"`` or
    ``"inconclusive"``.

    A difference is shown (positive or negative) when its interval excludes 0 and, if given, its
    Holm-adjusted p-value is below ``alpha``. "No effect" needs an equivalence margin stated in
    advance: ``"equivalent"`` when the interval lies inside ``[-margin, margin]``. Anything else is
    ``"inconclusive"`` at this sample size.

    Examples
    --------
    >>> verdict(0.01, 0.05), verdict(-0.02, 0.01), verdict(-0.02, 0.01, margin=0.03)
    ('positive', 'inconclusive', 'equivalent')
    """
    significant = p_adjusted is None or p_adjusted < alpha
    if lo > 0 and significant:
        return "positive"
    if hi < 0 and significant:
        return "negative"
    if margin is not None and -margin <= lo and hi <= margin:
        return "equivalent"
    return "inconclusive"


def holm_verdicts(frame: pd.DataFrame, *, margin: float | dict | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """A family of comparisons (rows with ``lo``, ``hi``, ``p``), Holm-adjusted, each with its verdict.

    Adds ``p_holm`` (:func:`holm` over *all* the rows: pass the whole family the text asserts or
    looked at) and ``verdict`` (:func:`verdict`): ``"positive"`` or ``"negative"`` when the
    interval excludes 0 and ``p_holm < alpha``; ``"equivalent"`` when the interval lies within the
    equivalence margin; else ``"inconclusive"``. The margin of a row is, in this order: the
    frame's ``margin`` column where it has one (NaN: none); ``margin[row["value"]]`` when
    ``margin`` is a dict (a value missing from it has none); else ``margin`` itself. Margins must
    be fixed before the results are seen.

    Examples
    --------
    >>> f = pd.DataFrame({"value": ["margin"] * 3, "lo": [0.1, -0.01, -0.2], "hi": [0.3, 0.01, 0.1],
    ...                   "p": [0.004, 0.9, 0.5]})
    >>> holm_verdicts(f, margin=0.02)["verdict"].tolist()
    ['positive', 'equivalent', 'inconclusive']
    >>> holm_verdicts(f, margin={"accuracy": 0.02})["verdict"].tolist()
    ['positive', 'inconclusive', 'inconclusive']
    """
    for k in ("lo", "hi", "p"):
        if k not in frame:
            raise ValueError(f"The 'frame' parameter of holm_verdicts needs a column {k!r}; got {list(frame.columns)}.")
    alpha = check_number(alpha, "alpha", "holm_verdicts", low=0, high=1, low_open=True, high_open=True)
    out = frame.reset_index(drop=True).copy()
    out["p_holm"] = holm(out["p"].to_numpy(dtype=float))
    if "margin" in out:
        each = [None if not np.isfinite(m) else float(m) for m in out["margin"].to_numpy(dtype=float)]
    elif isinstance(margin, dict):
        if "value" not in out:
            raise ValueError("The 'margin' parameter of holm_verdicts is a dict of margins by value, "
                             f"so the frame needs a 'value' column; got {list(out.columns)}.")
        each = [margin.get(v) for v in out["value"]]
    else:
        each = [None if margin is None else float(margin)] * len(out)
    out["verdict"] = [verdict(lo, hi, margin=m, p_adjusted=p, alpha=alpha)
                      for lo, hi, m, p in zip(out["lo"], out["hi"], each, out["p_holm"])]
    return out


def summarize(data, value: str, by: Sequence[str], level: float = 0.95) -> pd.DataFrame:
    """Mean of ``value`` with a confidence interval (:func:`mean_interval`), per group of ``by``.

    Returns
    -------
    DataFrame
        The ``by`` columns, then ``n``, ``mean``, ``lo``, ``hi`` (NaN for a group of one),
        ``std`` (population standard deviation), ``min``, ``max``; one row per group, sorted
        by the ``by`` columns.

    Examples
    --------
    >>> t = {"bn": np.array([0, 0, 1, 1]), "d": np.array([1.0, 3.0, 5.0, 5.0])}
    >>> s = summarize(t, "d", by=["bn"])
    >>> s["bn"].tolist(), s["mean"].tolist(), s["n"].tolist(), s["std"].tolist()
    ([0, 1], [2.0, 5.0], [2, 2], [1.0, 0.0])
    """
    frame = as_frame(data)
    by = [by] if isinstance(by, str) else list(by)
    _columns(frame, [value, *by], "summarize")
    rows = []
    for key, group in frame.groupby(by, sort=True):
        v = group[value].to_numpy(dtype=np.float64)
        m, lo, hi = mean_interval(v, level) if len(v) >= 2 else (float(v.mean()), np.nan, np.nan)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "n": len(v), "mean": m, "lo": lo, "hi": hi,
                     "std": float(v.std()), "min": float(v.min()), "max": float(v.max())})
    return pd.DataFrame(rows)


def paired_difference(
    data,
    value: str,
    arm: str,
    against: str,
    *,
    by: Sequence[str] = (),
    arm_column: str = "arm",
    seed_column: str = "seed",
    level: float = 0.95,
) -> pd.DataFrame:
    """``value`` of ``arm`` minus ``value`` of ``against``, paired by seed, summarised per group.

    Runs of the two arms with the same seed (and the same ``by`` values) share their initial
    weights and data order, so their difference removes what the seed does to both.

    Returns
    -------
    DataFrame
        The ``by`` columns, then ``n`` (paired seeds), ``mean``, ``lo``, ``hi`` of the
        differences (:func:`mean_interval`) and ``p``, the sign-flip p-value of a zero mean
        difference (:func:`sign_flip_pvalue`; adjust a family of them with :func:`holm`).

    Examples
    --------
    >>> t = {"arm": np.array(["a", "a", "b", "b"]), "seed": np.array([0, 1, 0, 1]),
    ...      "acc": np.array([0.9, 0.8, 0.7, 0.7])}
    >>> d = paired_difference(t, "acc", "a", "b")
    >>> d["n"].tolist(), [round(x, 6) for x in d["mean"]]
    ([2], [0.15])
    """
    frame = as_frame(data)
    by = [by] if isinstance(by, str) else list(by)
    _columns(frame, [value, arm_column, seed_column, *by], "paired_difference")
    keys = [*by, seed_column]
    a = frame[frame[arm_column] == arm].set_index(keys)[value]
    b = frame[frame[arm_column] == against].set_index(keys)[value]
    if a.index.has_duplicates or b.index.has_duplicates:
        raise ValueError(f"paired_difference needs one run per arm and {keys}; found repeats")
    diff = (a - b).replace([np.inf, -np.inf], np.nan).dropna().reset_index()
    if diff.empty:
        raise ValueError(f"no seed has both arms {arm!r} and {against!r}")
    if not by:
        m, lo, hi = mean_interval(diff[value], level)
        return pd.DataFrame([{"n": len(diff), "mean": m, "lo": lo, "hi": hi, "p": sign_flip_pvalue(diff[value])}])
    out = summarize(diff, value, by, level)
    out["p"] = [sign_flip_pvalue(g[value]) for _, g in diff.groupby(by, sort=True)]
    return out[[*by, "n", "mean", "lo", "hi", "p"]]


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``: the exponent ``p`` in ``y ~ x**p``.

    Examples
    --------
    >>> round(loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]), 6)
    2.0
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape or len(x) < 2:
        raise ValueError(f"x and y must be two sequences of the same length >= 2; got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise ValueError("x and y must be finite and positive to take logarithms")
    if np.ptp(x) == 0:
        raise ValueError("x must take at least two different values to fit a slope")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _number(v, digits: int, signed: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "-"
    v = 0.0 if abs(v) < 0.5 * 10.0**-digits else v  # rounding noise shows as 0, without a sign
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def interval_text(mean: float, lo: float, hi: float, digits: int = 3, *, signed: bool = False) -> str:
    """``"mean [lo, hi]"`` with ``digits`` decimals (``signed``: with a sign, for differences).

    Examples
    --------
    >>> interval_text(0.5, 0.25, 0.75, 2), interval_text(0.1, -0.05, 0.25, 2, signed=True)
    ('0.50 [0.25, 0.75]', '+0.10 [-0.05, +0.25]')
    """
    if not np.isfinite(lo):
        return _number(mean, digits, signed)
    return f"{_number(mean, digits, signed)} [{_number(lo, digits, signed)}, {_number(hi, digits, signed)}]"


_TABLE_STYLES = [
    # scoped to the table's own id by the Styler, so the look is the same in the book, JupyterLab
    # and a downloaded notebook; no colours, so the theme's light and dark modes both apply
    {"selector": "", "props": "border-collapse: collapse; font-variant-numeric: tabular-nums; "
                              "font-size: 0.9em; margin: 0.4em 0 1em 0;"},
    {"selector": "caption", "props": "caption-side: top; text-align: left; padding-bottom: 0.4em;"},
    {"selector": "th", "props": "text-align: left; padding: 0.3em 0.9em; border-bottom: 1px solid #888; "
                                "white-space: nowrap;"},
    {"selector": "td", "props": "text-align: left; padding: 0.2em 0.9em; white-space: nowrap;"},
]


class Table:
    """A table for the reader: a ``DataFrame`` with a caption.

    In the book and in JupyterLab it renders as an HTML table (a pandas Styler, without the
    index); as text (a terminal, a doctest, the text/plain output nbval compares) as aligned
    columns. ``frame`` holds the cells as shown.
    """

    def __init__(self, frame: pd.DataFrame, caption: str | None = None, precision: int = 3):
        self.frame = frame
        self.caption = caption
        self.precision = precision

    def _repr_html_(self) -> str:
        # the table's id comes from its content, not from pandas' random uuid: the same table
        # renders to the same HTML on every run (nbval compares it), and two tables differ
        uuid = hashlib.sha1(repr(self).encode()).hexdigest()[:10]
        styler = self.frame.style.hide(axis="index").set_uuid(uuid).format(precision=self.precision)
        if self.caption:
            styler = styler.set_caption(self.caption)
        styler = styler.set_table_attributes('class="bnlib-table"').set_table_styles(_TABLE_STYLES)
        return styler.to_html()

    def __repr__(self) -> str:
        text = self.frame.to_string(index=False, float_format=lambda v: f"{v:.{self.precision}f}")
        return f"{self.caption}\n{text}" if self.caption else text


def table(frame, *, caption: str | None = None, columns: dict | None = None, precision: int = 3) -> Table:
    """A :class:`Table` of ``frame`` (a DataFrame or a dict of columns).

    ``columns`` renames columns for the reader (``{"test_accuracy": "test accuracy"}``) and
    keeps only those named, in that order. Float cells show ``precision`` decimals (in the HTML
    and in the text alike); pass strings (:func:`interval_text`) for anything else.

    Examples
    --------
    >>> t = table({"arm": ["plain", "bn"], "acc": ["0.9", "1.0"]}, columns={"arm": "arm", "acc": "accuracy"})
    >>> t
    arm accuracy
    plain      0.9
       bn      1.0
    >>> "<table" in t._repr_html_()
    True
    """
    frame = as_frame(frame)
    if columns is not None:
        _columns(frame, list(columns), "table")
        frame = frame[list(columns)].rename(columns=columns)
    return Table(frame.reset_index(drop=True), caption, precision)
