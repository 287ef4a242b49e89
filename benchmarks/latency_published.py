"""Score the Arm latency predictor against published device measurements, leave-one-source-out.

For every target with ``targets/measurements/<target>.csv`` (figures others measured on real
devices, each with its source URL): each source's rows are predicted by a fit of the profile's few
constants to the *other* sources only (with one source there is nothing to hold out, so the rows
are predicted in-sample and the method says so). Reports per target the number of measurements,
the median predicted/measured, its quartiles and the share within ±10 % and ±25 %, next to the
structural prior alone (the profile's figures, nothing fitted), plus every row. Also records the
bundled teacher's predicted latency on each target at the profile's budget precision and threads
(issue 13, item 6).

Usage: python benchmarks/latency_published.py   (a minute or two; traces each network once)
Writes benchmarks/results/latency_published.json.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib.metadata import version
from pathlib import Path

from edgekd.bench.latency_fit import leave_one_source_out, load_measurements, predict_rows, summarize, trace_rows
from edgekd.bench.latency_model import LatencyModel, trace_ops
from edgekd.config.targets import TARGETS_DIR, load_target
from edgekd.models.example_teacher import example_teacher

ROOT = Path(__file__).resolve().parents[1]
GOAL = {"target": "cortex-a76", "within_25pct_at_least": 0.80, "median_ratio_in": [0.9, 1.1]}


def score(target: str) -> dict:
    profile = load_target(target)
    rows = load_measurements(TARGETS_DIR / "measurements" / f"{target}.csv")
    ops = trace_rows(rows)
    sources = len({r.url for r in rows})
    scored = leave_one_source_out(profile, rows, ops)
    method = "leave-one-source-out" if sources > 1 else "in-sample (one source)"
    prior = profile.model_copy(update={"latency_fit": None})
    prior_pred = predict_rows(prior, rows, ops)
    teacher = LatencyModel.for_target(profile)
    teacher_ms = teacher.predict_ms(
        trace_ops(example_teacher(), (1, 1, 28, 28)), profile.primary.precision, profile.budget.threads
    )
    return {
        "n": len(rows),
        "sources": sorted({r.url for r in rows}),
        "predictor": summarize([p / r.ms for r, p in scored], method, sources).model_dump(),
        "structural_prior_unfitted": summarize(
            [p / r.ms for r, p in zip(rows, prior_pred, strict=True)], "profile figures, nothing fitted", sources
        ).model_dump(),
        "fitted_in_profile": profile.latency_fit.model_dump(exclude={"error"}) if profile.latency_fit else None,
        "bundled_teacher": {
            "precision": profile.primary.precision,
            "threads": profile.budget.threads,
            "predicted_ms": round(teacher_ms, 2),
            "budget_ms": profile.budget.latency_ms,
        },
        "rows": [
            {
                "model": r.model,
                "input": r.input_size,
                "precision": r.precision,
                "threads": r.threads,
                "device": r.device,
                "url": r.url,
                "measured_ms": r.ms,
                "predicted_ms": round(p, 2),
                "ratio": round(p / r.ms, 3),
            }
            for r, p in scored
        ],
    }


def main() -> None:
    targets = sorted(p.stem for p in (TARGETS_DIR / "measurements").glob("*.csv"))
    results = {t: score(t) for t in targets}
    a76 = results.get("cortex-a76", {}).get("predictor", {})
    goal_met = (
        bool(a76)
        and (a76.get("within_25pct") or 0) >= GOAL["within_25pct_at_least"]
        and (GOAL["median_ratio_in"][0] <= (a76.get("median_ratio") or 0) <= GOAL["median_ratio_in"][1])
    )
    out = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "versions": {p: version(p) for p in ("edgekd", "torch", "scipy")},
        "note": "predictions are computed, not timed: the machine's load does not change them",
        "goal": GOAL,
        "goal_met": goal_met,
        "targets": results,
    }
    path = ROOT / "benchmarks" / "results" / "latency_published.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    for t, r in results.items():
        p = r["predictor"]
        print(
            f"{t}: n={r['n']} {p['method']}: median ratio {p['median_ratio']}, within ±10 % {p['within_10pct']}, "
            f"within ±25 % {p['within_25pct']}; teacher {r['bundled_teacher']['predicted_ms']} ms"
        )
    print(f"goal met: {goal_met}; wrote {path}")


if __name__ == "__main__":
    main()
