import pytest

from edgekd.core.atomic import atomic_write_text
from edgekd.pipeline.cache import StageCache


def test_entry_appears_only_when_complete(tmp_path):
    cache = StageCache(tmp_path)
    key = cache.key({"a": 1})
    assert cache.lookup("stage", key) is None
    with cache.produce("stage", key, {"a": 1}) as tmp:
        (tmp / "out.txt").write_text("x")
        assert cache.lookup("stage", key) is None
    hit = cache.lookup("stage", key)
    assert hit is not None and (hit / "out.txt").read_text() == "x"
    assert cache.misses == ["stage"] and cache.hits == ["stage"]


def test_failed_stage_leaves_nothing(tmp_path):
    cache = StageCache(tmp_path)
    key = cache.key({"b": 2})
    with pytest.raises(RuntimeError), cache.produce("stage", key, {"b": 2}) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert cache.lookup("stage", key) is None
    assert list(tmp_path.iterdir()) == []


def test_key_depends_on_every_input():
    assert StageCache.key({"a": 1, "b": 2}) == StageCache.key({"b": 2, "a": 1})
    assert StageCache.key({"a": 1}) != StageCache.key({"a": 2})


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
