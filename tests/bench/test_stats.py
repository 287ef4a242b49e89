import json
import math

import numpy as np
import pytest

from edgekd.bench.stats import LatencyStats, cv_flag, is_unstable, summarize


def test_hand_computed_small_sample():
    s = summarize([1.0, 2.0, 3.0, 4.0], init_ms=12.5)
    assert s.runs == 4
    assert s.mean_ms == 2.5
    assert s.min_ms == 1.0 and s.max_ms == 4.0
    # Linear interpolation: rank = q * (n - 1); p50 -> 1.5 -> 2.5, p90 -> 2.7 -> 3.7, p99 -> 2.97 -> 3.97.
    assert s.p50_ms == pytest.approx(2.5)
    assert s.p90_ms == pytest.approx(3.7)
    assert s.p99_ms == pytest.approx(3.97)
    # Sample std (ddof=1): sqrt(((1.5^2 + 0.5^2) * 2) / 3) = sqrt(5/3).
    assert s.std_ms == pytest.approx(math.sqrt(5 / 3))
    assert s.cv == pytest.approx(math.sqrt(5 / 3) / 2.5)
    assert s.init_ms == 12.5


def test_matches_numpy_on_random_samples():
    samples = np.random.default_rng(0).lognormal(mean=1.0, sigma=0.3, size=257)
    s = summarize(list(samples))
    p50, p90, p99 = np.percentile(samples, [50, 90, 99])
    assert s.p50_ms == pytest.approx(p50)
    assert s.p90_ms == pytest.approx(p90)
    assert s.p99_ms == pytest.approx(p99)
    assert s.mean_ms == pytest.approx(samples.mean())
    assert s.std_ms == pytest.approx(samples.std(ddof=1))
    assert s.cv == pytest.approx(samples.std(ddof=1) / samples.mean())
    assert s.init_ms is None


def test_single_sample_has_zero_spread():
    s = summarize([5.0])
    assert (s.runs, s.std_ms, s.cv, s.p50_ms, s.p99_ms) == (1, 0.0, 0.0, 5.0, 5.0)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [1.0, -0.5], [float("inf")]])
def test_rejects_bad_samples(bad):
    with pytest.raises(ValueError):
        summarize(bad)


def test_to_json_round_trips():
    s = summarize([1.0, 2.0, 4.0], init_ms=3.0)
    data = json.loads(json.dumps(s.to_json()))
    assert LatencyStats(**data) == s
    assert set(data) == {
        "runs", "mean_ms", "std_ms", "cv", "min_ms", "max_ms", "p50_ms", "p90_ms", "p99_ms", "init_ms"
    }  # fmt: skip


def test_stat_lookup_by_budget_name():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s.stat("p50") == s.p50_ms and s.stat("p99") == s.p99_ms
    with pytest.raises(ValueError):
        s.stat("p75")


def test_unstable_flag():
    steady = summarize([10.0, 10.1, 9.9, 10.0, 10.05])
    noisy = summarize([10.0, 20.0, 5.0, 10.0, 30.0])
    assert not is_unstable(steady)
    assert is_unstable(noisy)
    # The threshold is the coefficient of variation itself.
    assert is_unstable(steady, max_cv=steady.cv / 2)
    assert not is_unstable(noisy, max_cv=noisy.cv)


def test_cv_flag_names_the_spread():
    steady = summarize([10.0, 10.1, 9.9, 10.0, 10.05])
    noisy = summarize([10.0, 20.0, 5.0, 10.0, 30.0])
    assert cv_flag(steady) is None
    flag = cv_flag(noisy, max_cv=0.2)
    assert flag.startswith("unstable: cv ") and "> 0.200" in flag and "5 runs" in flag and "\n" not in flag
    assert cv_flag(noisy, max_cv=noisy.cv) is None
