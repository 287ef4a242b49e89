import pytest

from edgekd.config.build_config import DistillConfig
from edgekd.core.errors import ConfigError
from edgekd.distill.sweep import apply_point, grid_points, parse_sweep, run_sweep


def test_parse_and_grid_cover_the_product():
    grid = parse_sweep(["temperature=1,2,4,8", "alpha=0.3, 0.5,0.7", "loss.hint=0.5"])
    assert grid == {"temperature": [1, 2, 4, 8], "alpha": [0.3, 0.5, 0.7], "loss.hint": [0.5]}
    points = list(grid_points(grid))
    assert len(points) == 12
    assert len({tuple(p.values()) for p in points}) == 12


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["temperature"], "name=v1,v2"),
        (["temperature="], "name=v1,v2"),
        (["temperature=a,b"], "must be numbers"),
        (["depth=1,2"], "cannot sweep 'depth'"),
        (["alpha=0.1", "alpha=0.2"], "swept twice"),
    ],
)
def test_malformed_sweeps_are_config_errors(items, message):
    with pytest.raises(ConfigError, match=message):
        parse_sweep(items)


def test_apply_point_sets_fields_and_loss_weights_and_validates():
    cfg = DistillConfig(losses={"kd": 1.0})
    new = apply_point(cfg, {"temperature": 2.0, "loss.hint": 0.5, "epochs": 2.0})
    assert (new.temperature, new.losses, new.epochs) == (2.0, {"kd": 1.0, "hint": 0.5}, 2)
    assert cfg.temperature == 4.0, "the base config is unchanged"
    with pytest.raises(ConfigError, match="temperature"):
        apply_point(cfg, {"temperature": 0.0})
    with pytest.raises(ConfigError, match="alpha"):
        apply_point(cfg, {"alpha": 1.5})


def test_run_sweep_validates_everything_first_then_picks_the_best_by_val_accuracy():
    trained = []

    def run_point(cfg, point):
        trained.append(point)
        return {1.0: 0.5, 2.0: 0.8, 4.0: 0.7}[cfg.temperature] + 0.01 * cfg.alpha, {"note": cfg.temperature}

    seen = []
    result = run_sweep(DistillConfig(), {"temperature": [1, 2, 4], "alpha": [0.3, 0.5]}, run_point, seen.append)
    assert len(result.points) == 6 and len(seen) == 6
    assert result.best.values == {"temperature": 2.0, "alpha": 0.5}
    assert result.to_json()["points"][0]["note"] == 1.0
    trained.clear()
    with pytest.raises(ConfigError, match="alpha"):
        run_sweep(DistillConfig(), {"temperature": [1, 2], "alpha": [0.5, 3.0]}, run_point)
    assert trained == [], "a bad point is found before any training"
