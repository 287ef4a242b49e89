"""Broken target profiles fail with one-line ConfigErrors that say which file, which key, what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekd.config.targets import TARGETS_DIR, load_target
from edgekd.core.errors import ConfigError, EdgeKDError

TEMPLATE = "cortex-a76"


def write_profile(targets_dir: Path, name: str, edits: dict[str, str] | None = None) -> Path:
    """Copy the template profile to ``targets_dir/<name>.yaml``, renamed, with ``old -> new`` edits."""
    text = (TARGETS_DIR / f"{TEMPLATE}.yaml").read_text().replace(f"name: {TEMPLATE}", f"name: {name}")
    for old, new in (edits or {}).items():
        assert text.count(old) == 1, f"the template changed: {old!r} is not in it exactly once"
        text = text.replace(old, new)
    path = targets_dir / f"{name}.yaml"
    path.write_text(text)
    return path


def load_error(name_or_path: str, targets_dir: Path) -> str:
    """The message of the ConfigError that loading raises; it must be a single line."""
    with pytest.raises(ConfigError) as info:
        load_target(name_or_path, targets_dir)
    message = str(info.value)
    assert "\n" not in message, f"error message spans lines: {message!r}"
    assert isinstance(info.value, EdgeKDError) and info.value.exit_code == 2
    return message


def test_unedited_copy_loads(tmp_path: Path) -> None:
    write_profile(tmp_path, "board")
    assert load_target("board", tmp_path).name == "board"


def test_misspelled_optional_key_names_file_key_and_allowed_keys(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "board", {"\nprune:": "\nprun:"})
    message = load_error("board", tmp_path)
    assert str(path) in message
    assert "'prun'" in message
    assert "allowed keys" in message
    for key in ("prune", "budget", "runner", "exports"):
        assert key in message


def test_misspelled_required_key_names_file_key_and_allowed_keys(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "board", {"\nbudget:": "\nbudjet:"})
    message = load_error("board", tmp_path)
    assert str(path) in message
    assert "'budjet'" in message
    assert "allowed keys" in message
    assert "budget" in message.split("allowed keys", 1)[1]


def test_unknown_nested_key_lists_that_section_s_keys(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "board", {"  latency_ms: 30": "  latency_ms: 30\n  latncy: 3"})
    message = load_error("board", tmp_path)
    assert str(path) in message
    assert "'budget.latncy'" in message
    assert "latency_ms, max_accuracy_drop, stat, threads" in message


def test_unknown_key_in_efficiency_table_lists_op_kinds(tmp_path: Path) -> None:
    write_profile(tmp_path, "board", {"first_conv: 0.15}": "first_conv: 0.15, softmax: 0.2}"})
    message = load_error("board", tmp_path)
    assert "'compute.efficiency.int8.softmax'" in message
    assert "conv, depthwise, elementwise, first_conv, linear, pointwise" in message


@pytest.mark.parametrize(
    ("old", "new", "key", "allowed"),
    [
        ("{format: tflite, precision: int8}", "{format: tflit, precision: int8}", "exports.0.format",
         ("'onnx'", "'tflite'", "'openvino'")),
        ("kind: ssh", "kind: ftp", "runner.kind", ("'local'", "'qemu'", "'ssh'", "'adb'")),
        ("arch: aarch64", "arch: arm64", "arch", ("'aarch64'", "'x86_64'")),
        ("  stat: p50", "  stat: p95", "budget.stat", ("'p50'", "'p90'", "'p99'")),
    ],
)  # fmt: skip
def test_wrong_literal_names_allowed_values(tmp_path: Path, old: str, new: str, key: str, allowed) -> None:
    path = write_profile(tmp_path, "board", {old: new})
    message = load_error("board", tmp_path)
    assert str(path) in message
    assert f"'{key}'" in message
    assert repr(new.split(": ", 1)[1].split(",")[0]) in message  # the value that was written
    for value in allowed:
        assert value in message


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "board", {"cores: 4 ": "cores: four "})
    message = load_error("board", tmp_path)
    assert str(path) in message
    assert "'cpu.cores'" in message
    assert "integer" in message
    assert "'four'" in message


def test_out_of_range_figure_names_key_and_bound(tmp_path: Path) -> None:
    write_profile(tmp_path, "board", {"depthwise: 0.35": "depthwise: 3.5"})
    message = load_error("board", tmp_path)
    assert "'compute.efficiency.fp32.depthwise'" in message
    assert "less than or equal to 1" in message


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "board", {"name: board": "name: [board"})
    message = load_error("board", tmp_path)
    assert str(path) in message
    assert "not valid YAML" in message
    assert "line " in message


@pytest.mark.parametrize("text", ["", "- a list\n- not a mapping\n", "just a string\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    (tmp_path / "board.yaml").write_text(text)
    message = load_error("board", tmp_path)
    assert str(tmp_path / "board.yaml") in message
    assert "mapping" in message


def test_unknown_target_lists_known_targets(tmp_path: Path) -> None:
    write_profile(tmp_path, "board-a")
    write_profile(tmp_path, "board-b")
    message = load_error("board-c", tmp_path)
    assert "'board-c'" in message
    assert "known targets: board-a, board-b" in message


def test_unknown_target_suggests_the_closest_shipped_one() -> None:
    message = load_error("cortex-a67", TARGETS_DIR)
    assert "did you mean 'cortex-a76'?" in message
    for name in ("cortex-a72", "cortex-a53", "x86-64-host", "intel-cpu-openvino", "android-arm64"):
        assert name in message


def test_name_must_match_file_name(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "board", {"name: board": "name: other-board"})
    for how in ("board", str(path)):  # by name and by path
        message = load_error(how, tmp_path)
        assert str(path) in message
        assert "'name'" in message
        assert "'other-board'" in message
        assert "'board.yaml'" in message
