import json
from importlib.metadata import EntryPoint

from edgekd.cli.main import main
from edgekd.core import registry as reg


def test_plugins_lists_every_registry_entry(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for r in reg.ALL_REGISTRIES:
        assert f"{r.kind} ({len(r.names())}):" in out
        for name, target, _ in r.entries():
            assert name in out and target in out
    assert "local" in out and "edgekd.bench.local_runner:LocalRunner" in out and "[built-in]" in out


def test_plugins_json_marks_entry_point_plugins(capsys, monkeypatch):
    fake = reg.Registry("runners", "runner")
    fake.register("local", "edgekd.bench.local_runner:LocalRunner")
    ep = EntryPoint("jetson", "acme_edge.runner:JetsonRunner", "edgekd.runners")
    monkeypatch.setattr(reg, "entry_points", lambda group: [ep] if group == "edgekd.runners" else [])
    monkeypatch.setattr(reg, "ALL_REGISTRIES", (fake,))
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["runners"]
    assert {"name": "jetson", "target": "acme_edge.runner:JetsonRunner", "source": "plugin"} in rows
    assert {"name": "local", "target": "edgekd.bench.local_runner:LocalRunner", "source": "built-in"} in rows
