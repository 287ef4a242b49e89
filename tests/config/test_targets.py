"""The shipped target profiles: all load, are complete and cited, and match the committed schema."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from edgekd.config.schema import (
    REGENERATE,
    SCHEMA_PATH,
    main,
    render_schema,
    target_profile_schema,
    write_schema,
)
from edgekd.config.target_profile import TargetProfile
from edgekd.config.targets import TARGETS_DIR, load_all, load_target, profile_paths

REQUIRED = ("cortex-a76", "cortex-a72", "cortex-a53", "x86-64-host", "intel-cpu-openvino", "android-arm64")
NAMES = sorted(profile_paths())
# Figures that feed the latency and energy models; each must say where it comes from.
CITED_KEYS = (
    "cores", "freq_ghz", "fp32_gflops_per_core", "int8_gops_per_core", "mem_bandwidth_gbs",
    "op_overhead_us", "idle_w", "active_w_per_core",
)  # fmt: skip


def test_required_profiles_exist() -> None:
    missing = sorted(set(REQUIRED) - set(NAMES))
    assert not missing, f"targets/ lacks profiles {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_profile_loads_by_name_and_by_path(name: str) -> None:
    profile = load_target(name)
    assert isinstance(profile, TargetProfile)
    assert profile.name == name, "a profile's name must match its file name"
    assert load_target(str(TARGETS_DIR / f"{name}.yaml")) == profile


def test_load_all_returns_every_profile() -> None:
    assert [p.name for p in load_all()] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_profile_has_a_primary_export_and_no_duplicates(name: str) -> None:
    profile = load_target(name)
    assert profile.primary == profile.exports[0]
    pairs = [(e.format, e.precision) for e in profile.exports]
    assert len(set(pairs)) == len(pairs), f"{name}: duplicate export entries {pairs}"


@pytest.mark.parametrize("name", NAMES)
def test_profile_figures_are_consistent(name: str) -> None:
    p = load_target(name)
    assert p.compute.int8_gops_per_core >= p.compute.fp32_gflops_per_core, "int8 peak below fp32 peak"
    assert p.compute.int8_gops_per_core <= 8 * p.compute.fp32_gflops_per_core, "int8 peak > 8x fp32: typo?"
    assert p.budget.threads <= p.cpu.cores, "budget uses more threads than the target has cores"
    expected_simd = "neon" if p.arch == "aarch64" else "avx2"
    assert expected_simd in p.cpu.simd, f"{p.arch} target without {expected_simd}"
    for precision, eff in p.compute.efficiency.items():
        assert eff.depthwise <= eff.conv, f"{precision}: depthwise convs are never more efficient than dense"


@pytest.mark.parametrize("name", NAMES)
def test_profile_figures_carry_a_comment(name: str) -> None:
    """Each latency/energy figure has a comment on its line or just above it (source or 'assumption')."""
    lines = (TARGETS_DIR / f"{name}.yaml").read_text().splitlines()
    for key in CITED_KEYS:
        index = next((i for i, line in enumerate(lines) if re.match(rf"\s*{key}:", line)), None)
        assert index is not None, f"{name}.yaml: no '{key}:' line"
        inline = "#" in lines[index]
        above = index > 0 and lines[index - 1].lstrip().startswith("#")
        assert inline or above, f"{name}.yaml: '{key}' needs a comment citing its source (or 'assumption')"


def test_committed_schema_is_up_to_date() -> None:
    committed = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
    assert committed == render_schema(), (
        f"{SCHEMA_PATH} does not match edgekd/config/target_profile.py; regenerate it with `{REGENERATE}`"
    )


def test_write_schema_and_main_write_the_rendered_schema(tmp_path) -> None:
    out = write_schema(tmp_path / "schema.json")
    assert out.read_text() == render_schema()
    assert json.loads(out.read_text()) == target_profile_schema()
    assert main([str(tmp_path / "again.json")]) == 0
    assert (tmp_path / "again.json").read_text() == render_schema()


def test_schema_rejects_unknown_keys_like_the_model() -> None:
    schema = target_profile_schema()
    assert schema["title"] == "TargetProfile"
    assert schema["additionalProperties"] is False
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values() if "properties" in d)


@pytest.mark.parametrize("name", NAMES)
def test_profile_validates_against_committed_schema(name: str) -> None:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    data = yaml.safe_load((TARGETS_DIR / f"{name}.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    data["budjet"] = data.pop("budget")
    assert not jsonschema.Draft202012Validator(schema).is_valid(data)
