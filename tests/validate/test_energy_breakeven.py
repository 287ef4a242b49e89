"""Energy break-even: hand-computed cases, the never-breaks-even cases, and bad input."""

import json
import math

import pytest

from edgekd.config.target_profile import PowerSpec
from edgekd.config.targets import load_target
from edgekd.core.errors import InputError
from edgekd.validate.energy_breakeven import breakeven, host_power_w


def test_exact_break_even():
    # 600 s x 7 W = 4200 J = 4,200,000 mJ; saves 3 - 1 = 2 mJ per inference -> 2,100,000 inferences.
    r = breakeven(600, 7.0, 3.0, 1.0)
    assert r["distill_energy_j"] == pytest.approx(4200.0)
    assert r["saved_mj_per_inference"] == pytest.approx(2.0)
    assert r["inferences"] == 2_100_000 and r["breaks_even"] is True


def test_rounds_up_to_the_first_inference_that_covers_the_cost():
    # 10 s x 3 W = 30 J = 30,000 mJ; saves 1.2 - 0.5 = 0.7 mJ: 30,000 / 0.7 = 42,857.14 -> 42,858
    # (42,857 x 0.7 = 29,999.9 mJ is still short; 42,858 x 0.7 = 30,000.6 mJ covers it).
    r = breakeven(10, 3.0, 1.2, 0.5)
    assert r["inferences"] == 42_858


def test_float_noise_does_not_add_an_inference():
    # 1 s x 0.2 W = 200 mJ; 0.3 - 0.1 mJ is 0.19999999999999998 in floats; 200 / 0.2 = 1000 exactly.
    assert breakeven(1, 0.2, 0.3, 0.1)["inferences"] == 1000


@pytest.mark.parametrize(("seconds", "watts", "teacher", "student"),
                         [(3600, 65.0, 12.5, 3.1), (1.5, 7.0, 0.9, 0.899), (7200, 0.5, 40.0, 0.01)])  # fmt: skip
def test_count_is_the_smallest_that_covers_the_distillation_energy(seconds, watts, teacher, student):
    r = breakeven(seconds, watts, teacher, student)
    n, saved, cost_mj = r["inferences"], teacher - student, seconds * watts * 1000.0
    assert n * saved >= cost_mj * (1 - 1e-12)
    assert (n - 1) * saved < cost_mj


@pytest.mark.parametrize("student", [2.0, 2.5])
def test_student_that_saves_nothing_never_breaks_even(student):
    r = breakeven(60, 7.0, 2.0, student)
    assert r["inferences"] is None and r["breaks_even"] is False
    assert r["saved_mj_per_inference"] == pytest.approx(2.0 - student)
    assert json.loads(json.dumps(r)) == r  # JSON-able: no infinity


def test_free_distillation_breaks_even_at_once():
    assert breakeven(0, 7.0, 1.0, 1.0)["inferences"] == 0
    assert breakeven(100, 0.0, 1.0, 0.5)["inferences"] == 0


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "10", True])
def test_bad_input_is_an_input_error(bad):
    with pytest.raises(InputError, match="distill_seconds"):
        breakeven(bad, 7.0, 1.0, 0.5)
    with pytest.raises(InputError, match="student_mj_per_inference"):
        breakeven(10, 7.0, 1.0, bad)


def test_host_power_from_a_power_section():
    # 2.7 W idle + 4 busy cores x 1.2 W = 7.5 W
    assert host_power_w(PowerSpec(idle_w=2.7, active_w_per_core=1.2), 4) == pytest.approx(7.5)
    with pytest.raises(InputError, match="cores"):
        host_power_w(PowerSpec(idle_w=2.7, active_w_per_core=1.2), 0)


def test_host_profile_power_feeds_breakeven():
    host = load_target("x86-64-host")
    watts = host_power_w(host.power, host.cpu.cores)
    assert watts == pytest.approx(host.power.idle_w + host.power.active_w_per_core * host.cpu.cores) and watts > 0
    r = breakeven(120, watts, 2.0, 1.0)
    assert r["distill_energy_j"] == pytest.approx(120 * watts)
    assert r["inferences"] == math.ceil(round(120 * watts * 1000.0, 6))
