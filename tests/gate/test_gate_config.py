"""Rules file, --limit overrides and their resolution against the profile and the report."""

import pytest

from edgekd.config.targets import load_target
from edgekd.core.errors import ConfigError
from edgekd.gate.gate_config import (
    GateRulesConfig,
    MetricLimits,
    apply_overrides,
    load_gate_config,
    parse_limit,
    resolve_settings,
)
from edgekd.gate.metrics import METRICS
from tests.gate.report_factory import make_report


def test_every_metric_has_a_limit_field_and_back():
    assert set(METRICS) == set(MetricLimits.model_fields)


def test_rules_file_is_read(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("stat: p90\nstrict: true\nrules:\n  latency: 25\n  size: 2MiB\n  ece: 0.05\n"
                    "baseline:\n  max_regression: 3%\n")  # fmt: skip
    cfg = load_gate_config(path)
    assert (cfg.stat, cfg.strict, cfg.rules.latency, cfg.rules.size, cfg.rules.ece) == ("p90", True, 25, 2**21, 0.05)
    assert cfg.baseline.max_regression == 3.0


def test_unknown_metric_in_rules_file_lists_the_known_ones(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("rules:\n  latncy: 25\n")
    with pytest.raises(ConfigError) as err:
        load_gate_config(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "unknown metric 'latncy'" in msg and "did you mean 'latency'" in msg
    assert all(name in msg for name in METRICS)


def test_unknown_key_elsewhere_is_rejected(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("stats: p90\n")
    with pytest.raises(ConfigError, match=r"unknown key 'stats' \(did you mean 'stat'\?\)"):
        load_gate_config(path)


@pytest.mark.parametrize("text", ["stat: p95\n", "rules:\n  parity: 1.5\n", "rules:\n  size: lots\n", "[1, 2]\n"])
def test_bad_values_are_config_errors(tmp_path, text):
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=str(path)):
        load_gate_config(path)


def test_missing_rules_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_gate_config(tmp_path / "nope.yaml")


def test_parse_limit():
    assert parse_limit(" size = 2MB ") == ("size", "2MB")
    with pytest.raises(ConfigError, match="expected METRIC=VALUE"):
        parse_limit("latency")
    with pytest.raises(ConfigError, match=r"unknown metric 'acc'.*known metrics: latency, accuracy_drop"):
        parse_limit("acc=1")


def test_overrides_win_over_the_file_and_options_over_limits():
    cfg = GateRulesConfig(stat="p90", rules=MetricLimits(latency=25, ece=0.1))
    out = apply_overrides(cfg, ["latency=20", "size=1.5MB"], {"rules.latency": 15.0, "stat": None,
                                                               "baseline.max_regression": "2.5%"})  # fmt: skip
    assert (out.stat, out.rules.latency, out.rules.ece, out.rules.size) == ("p90", 15.0, 0.1, 1_500_000)
    assert out.baseline.max_regression == 2.5


def test_override_out_of_range_names_the_key():
    with pytest.raises(ConfigError, match=r"command line: key 'rules.latency'.*greater than 0"):
        apply_overrides(GateRulesConfig(), [], {"rules.latency": -1.0})


def test_defaults_come_from_the_profile_and_the_reports_budget():
    profile = load_target("cortex-a76")
    s = resolve_settings(GateRulesConfig(), profile, make_report("cortex-a76", budget_ms=22.0))
    assert s.stat == "p50"
    assert s.limits == {"latency": 22.0, "accuracy_drop": profile.budget.max_accuracy_drop}
    assert s.parity_min == {"fp32": profile.parity.fp32_min_agreement, "int8": profile.parity.int8_min_agreement}
    s = resolve_settings(GateRulesConfig(rules=MetricLimits(parity=0.9, energy=5)), profile, make_report("cortex-a76"))
    assert s.parity_min == {"fp32": 0.9, "int8": 0.9} and s.limits["energy"] == 5.0
