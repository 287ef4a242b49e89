"""`edgekd prune` runs the build's own prune stage: same target and budget, same plan."""

import json

import pytest

from edgekd.cli.main import main
from edgekd.core.progress import NULL_PROGRESS
from edgekd.pipeline.cache import StageCache
from edgekd.pipeline.inputs import make_config, resolve
from edgekd.pipeline.stages import StageContext, prune_stage

pytestmark = pytest.mark.slow  # two prunes of the bundled teacher to a budget it does not meet


def test_prune_command_gives_the_build_prune_stage_plan(tmp_path, capsys):
    out = tmp_path / "prune"
    assert main(["prune", "--target", "cortex-a76", "--budget-ms", "15", "--out", str(out), "--no-progress"]) == 0
    from_command = json.loads((out / "prune.json").read_text())

    # the build's prune stage, computed afresh in another cache folder
    inputs = resolve(make_config(target="cortex-a76", budget_ms=15, out_dir=tmp_path / "build"))
    ctx = StageContext(inputs, StageCache(tmp_path / "build" / ".stages"), NULL_PROGRESS)
    _, from_build = prune_stage(ctx)
    assert [r.status for r in ctx.runner.records] == ["computed"]

    assert from_command["channels"] == from_build["channels"]
    assert from_command["ratio"] == from_build["ratio"]
    assert from_command["predicted_ms"] == pytest.approx(from_build["predicted_ms"])
    assert from_command["refinement"] == from_build["refinement"]
    assert from_command["budget_ms"] == 15 and from_command["target"] == "cortex-a76"
    assert from_command["ratio"] > 0  # the teacher (~21 ms predicted) does not fit 15 ms: it was pruned
