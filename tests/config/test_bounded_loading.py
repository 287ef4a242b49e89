"""Bounded YAML/JSON reading: size, alias expansion, nesting, unsafe tags, non-text files, short messages."""

import os
import time

import pytest

from edgekd.config.loading import MAX_YAML_BYTES, load_json, load_yaml, parse_yaml, short_repr
from edgekd.core.errors import ConfigError
from tests.cli.hostile_inputs import alias_bomb


def test_alias_bomb_fails_fast_and_short():
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases expand to more than") as info:
        parse_yaml("description:\n" + alias_bomb(), "t.yaml")
    assert time.perf_counter() - start < 5
    assert len(str(info.value)) < 200


def test_moderate_aliases_are_still_allowed():
    text = "base: &b {lr: 0.1, epochs: 2}\nrun1: *b\nrun2: *b\n"
    assert parse_yaml(text, "c.yaml") == {"base": {"lr": 0.1, "epochs": 2}, "run1": {"lr": 0.1, "epochs": 2},
                                          "run2": {"lr": 0.1, "epochs": 2}}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("x: !!python/object/apply:os.system ['true']", "unsafe or unknown YAML tag '!!python/object/apply:os.system'"),
        ("x: !!python/name:os.system", "unsafe"),
        ("x: !custom 3", "unsafe or unknown YAML tag '!custom'"),
        ("a: &r [*r]", "refers to itself"),
        ("a: " + "[" * 3000 + "]" * 3000, "nests too deeply"),
        ("a: [unclosed", "line 1 is not valid YAML"),
        ("? [a]\n: b", "not plain YAML"),
    ],
)
def test_bad_yaml_is_one_line(text, match):
    with pytest.raises(ConfigError, match=match.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_yaml(text, "f.yaml")
    assert "\n" not in str(info.value)


def test_python_tag_never_runs(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(ConfigError, match="unsafe"):
        parse_yaml(f"x: !!python/object/apply:pathlib.Path.touch [{str(marker)!r}]", "f.yaml")
    assert not marker.exists()


def test_size_cap_binary_and_special_files(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_YAML_BYTES)
    with pytest.raises(ConfigError, match="larger than"):
        load_yaml(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml(binary)
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_yaml(fifo)  # would block forever if opened
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml")


def test_json_limits(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"ms": NaN}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_json(path)
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_json(path)
    path.write_text('{"a": 1}')
    assert load_json(path) == {"a": 1}
    with pytest.raises(ConfigError, match="larger than"):
        load_json(path, max_bytes=4)


def test_short_repr_is_bounded_whatever_the_input():
    nested: list = []
    for _ in range(50):
        nested = [nested] * 10
    assert len(short_repr(nested)) < 200
    assert len(short_repr("x" * 1_000_000)) < 100
