"""bnlib.stats against independent computations (scipy, pandas, hand-made pairs)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bnlib import stats


def test_mean_interval_is_scipys_bca_bootstrap_at_the_expanded_level():
    v = np.random.default_rng(0).normal(size=12)
    m, lo, hi = stats.mean_interval(v, 0.9, seed=4)
    wide = 2 * sps.norm.cdf(np.sqrt(12 / 11) * sps.t.ppf(0.95, 11)) - 1
    ref = sps.bootstrap((v,), np.mean, confidence_level=wide, n_resamples=9999, method="BCa",
                        random_state=np.random.default_rng(4)).confidence_interval
    assert m == pytest.approx(v.mean())
    assert (lo, hi) == pytest.approx(tuple(ref))


@pytest.mark.parametrize("n", [10, 20])
def test_mean_interval_covers_skewed_bounded_means_and_never_leaves_the_range(n):
    # accuracies of 10 or 20 seeds: Beta(6, 1), mean 6/7, skewed towards the bound 1
    rng = np.random.default_rng(n)
    hits, outside = 0, 0
    for _ in range(1000):
        v = rng.beta(6, 1, size=n)
        m, lo, hi = stats.mean_interval(v, n_resamples=999, seed=int(rng.integers(2**31)))
        hits += lo <= 6 / 7 <= hi
        outside += lo < 0 or hi > 1 or lo < v.min() or hi > v.max()
    assert outside == 0
    assert hits >= 900, f"coverage {hits / 1000:.3f}"


def test_mean_interval_of_equal_values_is_the_value():
    assert stats.mean_interval([0.5] * 10) == (0.5, 0.5, 0.5)


def test_sign_flip_pvalue_against_enumeration_and_holm_against_definition():
    d = np.array([0.3, -0.1, 0.2, 0.4, 0.1, 0.25])
    # oracle: enumerate the 64 sign patterns by itertools
    import itertools

    means = [abs(np.dot(s, d)) / len(d) for s in itertools.product([-1, 1], repeat=len(d))]
    assert stats.sign_flip_pvalue(d) == pytest.approx(np.mean(np.array(means) >= abs(d.mean()) - 1e-15))
    p = np.array([0.02, 0.001, 0.04, 0.3])
    # Holm by its definition: sorted p_(i) times (m - i + 1), running maximum, capped at 1
    ref = {1: 0.004, 0: 0.06, 2: 0.08, 3: 0.3}
    assert stats.holm(p).tolist() == pytest.approx([ref[i] for i in range(4)])


def test_verdict_needs_a_margin_to_call_no_effect():
    assert stats.verdict(-0.01, 0.02) == "inconclusive"
    assert stats.verdict(-0.01, 0.02, margin=0.05) == "equivalent"
    assert stats.verdict(0.01, 0.02, p_adjusted=0.2) == "inconclusive"
    assert stats.verdict(-0.3, -0.1, p_adjusted=0.01) == "negative"


def test_summarize_matches_pandas_groupby():
    rng = np.random.default_rng(1)
    t = {"arm": np.repeat(["a", "b"], 6), "layer": np.tile([1, 2], 6), "x": rng.normal(size=12)}
    s = stats.summarize(t, "x", by=["arm", "layer"])
    ref = pd.DataFrame(t).groupby(["arm", "layer"])["x"]
    assert s["mean"].to_numpy() == pytest.approx(ref.mean().to_numpy())
    assert s["std"].to_numpy() == pytest.approx(ref.std(ddof=0).to_numpy())
    assert s["n"].tolist() == [3, 3, 3, 3]
    for (_, row), (_, group) in zip(s.iterrows(), ref):
        assert (row["lo"], row["hi"]) == pytest.approx(stats.mean_interval(group)[1:])


def test_summarize_single_value_group_has_no_interval():
    s = stats.summarize({"g": [0, 1, 1], "x": [1.0, 2.0, 4.0]}, "x", by="g")
    assert np.isnan(s["lo"][0]) and s["n"].tolist() == [1, 2]


def test_paired_difference_pairs_by_seed_not_by_row_order():
    # rows of arm b are shuffled: pairing must follow the seed column
    t = pd.DataFrame({"arm": ["a"] * 4 + ["b"] * 4, "seed": [0, 1, 2, 3, 3, 2, 1, 0],
                      "bs": [8] * 8, "x": [1.0, 2.0, 3.0, 4.0, 3.5, 2.5, 1.5, 0.5]})
    d = stats.paired_difference(t, "x", "a", "b", by=["bs"])
    assert d["n"].tolist() == [4]
    assert d["mean"][0] == pytest.approx(0.5)
    assert d["lo"][0] == pytest.approx(0.5) and d["hi"][0] == pytest.approx(0.5)
    assert d["p"][0] == pytest.approx(2 / 16)  # all four differences positive: 2 of 16 sign patterns


def test_paired_difference_refuses_missing_pairs_and_columns():
    t = {"arm": ["a", "c"], "seed": [0, 0], "x": [1.0, 2.0]}
    with pytest.raises(ValueError, match="no seed has both arms"):
        stats.paired_difference(t, "x", "a", "b")
    with pytest.raises(ValueError, match="has no column 'y'"):
        stats.paired_difference(t, "y", "a", "c")


def test_interval_text_and_table_render():
    assert stats.interval_text(1.0, 0.5, 1.5, 1) == "1.0 [0.5, 1.5]"
    assert stats.interval_text(-1e-9, -0.1, 0.1, 2, signed=True) == "+0.00 [-0.10, +0.10]"
    assert stats.interval_text(0.25, np.nan, np.nan, 2) == "0.25"
    t = stats.table(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), caption="cap")
    html = t._repr_html_()
    assert "<table" in html and "cap" in html and "<th" in html
    assert repr(t).splitlines()[0] == "cap"


def test_loglog_slope_recovers_exponent():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert stats.loglog_slope(x, 5 * x**1.5) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        stats.loglog_slope([1, 1], [2, 3])


def test_table_html_is_the_same_on_every_render_and_differs_between_tables():
    a = stats.table({"x": [0.123456, 2.0]}, caption="a")
    assert a._repr_html_() == stats.table({"x": [0.123456, 2.0]}, caption="a")._repr_html_()
    assert a._repr_html_() != stats.table({"x": [0.5, 2.0]}, caption="a")._repr_html_()
    assert "0.123" in a._repr_html_() and "0.123456" not in a._repr_html_()
    assert "0.123" in repr(a) and "0.1235" not in repr(a)


def test_holm_verdicts_margin_sources_and_family():
    # Holm over the WHOLE family: a p of 0.02 alone is significant, among three it is not (3 * 0.02 > 0.05)
    family = pd.DataFrame({"value": ["margin", "accuracy", "margin"], "lo": [0.01, -0.004, -0.3],
                           "hi": [0.2, 0.004, 0.2], "p": [0.02, 0.9, 0.6]})
    alone = stats.holm_verdicts(family.iloc[:1])
    assert alone["verdict"].tolist() == ["positive"]
    out = stats.holm_verdicts(family)
    assert out["p_holm"].tolist() == pytest.approx([0.06, 1.0, 1.0])  # 3 x 0.02; max(2 x 0.6, 0.9) capped at 1
    assert out["verdict"].tolist() == ["inconclusive"] * 3  # no margin: never "no effect"
    # margins by value, one for all, or per row (the row's own column wins)
    assert stats.holm_verdicts(family, margin={"accuracy": 0.01})["verdict"].tolist()[1] == "equivalent"
    assert stats.holm_verdicts(family, margin={"margin": 0.01})["verdict"].tolist()[1] == "inconclusive"
    assert stats.holm_verdicts(family, margin=0.01)["verdict"].tolist()[1] == "equivalent"
    rows = stats.holm_verdicts(family.assign(margin=[np.nan, 0.001, np.nan]), margin=0.01)
    assert rows["verdict"].tolist()[1] == "inconclusive"
    with pytest.raises(ValueError, match="needs a column 'p'"):
        stats.holm_verdicts(family.drop(columns="p"))
    with pytest.raises(ValueError, match="'value' column"):
        stats.holm_verdicts(family.drop(columns="value"), margin={"margin": 0.01})
