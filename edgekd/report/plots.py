"""The report's plots, drawn from report.json alone as inline SVG (no files, no external assets).

matplotlib is imported lazily, through its object API and SVG canvas (no pyplot, no global backend
switch). Each plot is ``(id, title, svg)``; every id in :data:`PLOT_IDS` is always drawn, with a short
"no data" note inside the plot when the report lacks what it needs.

Example:
    >>> plots = render_plots(json.load(open("build/cortex-a76/report.json")))  # doctest: +SKIP
    >>> [p.id for p in plots] == list(PLOT_IDS)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PLOT_IDS: tuple[str, ...] = (
    "plot-latency",
    "plot-reliability",
    "plot-per-class",
    "plot-sweep",
    "plot-cascade",
    "plot-corruptions",
)
_TEACHER, _STUDENT, _ACCENT = "#7f7f7f", "#1f77b4", "#d62728"


@dataclass(frozen=True)
class Plot:
    """One rendered plot: ``id`` (HTML id), ``title`` and ``svg`` (an ``<svg>`` element as text)."""

    id: str
    title: str
    svg: str


def _figure(width: float = 7.0, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Any, plot_id: str) -> str:
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    # a salt per plot keeps the ids of several inline SVGs in one page apart
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": plot_id}):
        FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # matplotlib numbers its element ids per figure (figure_1, patch_1, ...): prefix them, and every
    # reference to them, with the plot id so that ids stay unique in a page holding several plots
    text = re.sub(r'\bid="([^"]+)"', rf'id="{plot_id}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{plot_id}-\1"', text)
    return re.sub(r"url\(#([^)]+)\)", rf"url(#{plot_id}-\1)", text)


def _no_data(ax: Any, why: str) -> None:
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _latency(r: dict, ax: Any) -> None:
    rows = []
    teacher = {e["stat"]: e["ms"] for e in r["teacher"]["latency"] if e["evidence"].startswith("measured")}
    if teacher:
        rows.append(("teacher onnx-fp32", {f"{k}_ms": v for k, v in teacher.items()}, _TEACHER))
    for a in r.get("artifacts", []):
        stats = (a.get("bench") or {}).get("stats") or {f"{e['stat']}_ms": e["ms"] for e in a.get("latency", [])}
        rows.append((a["name"], stats, _STUDENT))
    if not rows:
        _no_data(ax, "no measured latency in this report")
        return
    for i, (_, s, colour) in enumerate(rows):
        lo, hi = s.get("min_ms", s.get("p50_ms")), s.get("max_ms", s.get("p99_ms"))
        ax.plot([lo, hi], [i, i], color=colour, lw=1)
        ax.barh(i, s["p90_ms"] - s["p50_ms"], left=s["p50_ms"], height=0.5, color=colour, alpha=0.6)
        ax.plot([s["p50_ms"]], [i], "|", color="black", ms=14)
        ax.plot([s["p99_ms"]], [i], "x", color=_ACCENT)
    ax.set_yticks(range(len(rows)), [n for n, _, _ in rows])
    ax.set_xlabel("ms per inference on this machine (measured-host)")
    ax.set_xscale("log")
    ax.set_title("line min-max, box p50-p90, | p50, x p99", fontsize=9)


def _reliability(r: dict, ax: Any) -> None:
    cal = (r.get("validation") or {}).get("calibration")
    if not cal:
        _no_data(ax, "no calibration data (validation did not run)")
        return
    ts = r["validation"]["temperature_scaling"]["val"]
    ax.plot([0, 1], [0, 1], ls="--", color="black", lw=0.8, label="perfect calibration")
    for key, label, colour, marker in (
        ("student_val", f"before (T=1), ECE {ts['ece_before']:.3f}", _ACCENT, "o"),
        ("student_val_calibrated", f"after (T={ts['temperature']:.2f}), ECE {ts['ece_after']:.3f}", _STUDENT, "s"),
    ):
        bins = [b for b in cal[key]["bins"] if b["count"]]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker=marker, color=colour,
                label=label)  # fmt: skip
    ax.set_xlabel("confidence (mean max-probability in bin)")
    ax.set_ylabel("accuracy in bin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"student, validation split ({ts['samples']} images, 15 bins)", fontsize=9)


def _per_class(r: dict, ax: Any) -> None:
    t, s = r["teacher"].get("per_class_accuracy"), r["student"].get("per_class_accuracy")
    if not t or not s:
        _no_data(ax, "no per-class accuracy in this report")
        return
    names = [c for c in t if c in s]
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [100 * t[c] for c in names], 0.4, color=_TEACHER, label="teacher")
    ax.bar([x + 0.2 for x in xs], [100 * s[c] for c in names], 0.4, color=_STUDENT, label="student")
    ax.set_xticks(list(xs), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("top-1 accuracy, %")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="lower right")


def _predicted(entries: list[dict], precision: str) -> float | None:
    return next((e["ms"] for e in entries if e["evidence"] == "predicted" and e["precision"] == precision), None)


def _sweep(r: dict, ax: Any) -> None:
    precision = r["budget"]["precision"]
    points = [p for p in (r.get("prune_sweep") or {}).get("points", []) if p.get("accuracy") is not None]
    if points:
        for pareto, colour, label in ((False, "#aec7e8", "sweep"), (True, _STUDENT, "sweep, Pareto front")):
            sel = [p for p in points if bool(p.get("pareto")) == pareto]
            ax.scatter([p["predicted_ms"] for p in sel], [100 * p["accuracy"] for p in sel], color=colour,
                       label=label, s=18)  # fmt: skip
    t_ms, s_ms = _predicted(r["teacher"]["latency"], precision), _predicted(r["student"]["latency"], precision)
    if t_ms is not None:
        ax.scatter([t_ms], [100 * r["teacher"]["accuracy"]], color=_TEACHER, marker="D", s=50, label="teacher")
    if s_ms is not None:
        ax.scatter([s_ms], [100 * r["student"]["accuracy"]], color=_ACCENT, marker="*", s=160,
                   label="chosen student", zorder=3)  # fmt: skip
    ax.axvline(r["budget_ms"], color=_ACCENT, ls="--", lw=1, label=f"budget {r['budget_ms']:g} ms")
    ax.set_xlabel(f"predicted latency on {r['target']['name']}, ms ({precision})")
    ax.set_ylabel("test accuracy, %")
    ax.legend(fontsize=8, loc="lower right")
    if not points:
        ax.set_title("no pruning sweep in this build: teacher and chosen student only", fontsize=9)


def _cascade(r: dict, ax: Any) -> None:
    c = (r.get("validation") or {}).get("cascade")
    if not c:
        _no_data(ax, "no cascade data (validation did not run)")
        return
    pts = c["points"]
    ax.plot([p["expected_ms"] for p in pts], [100 * p["cascade_accuracy"] for p in pts], marker=".",
            color=_STUDENT, label="cascade (threshold 0 → 1)")  # fmt: skip
    ax.axhline(100 * c["target_accuracy"], color=_TEACHER, ls=":", lw=1, label="target accuracy")
    rec = c.get("recommended")
    if rec:
        ax.scatter([rec["expected_ms"]], [100 * rec["cascade_accuracy"]], color=_ACCENT, marker="*", s=160,
                   zorder=3, label=f"recommended: threshold {rec['threshold']:g}")  # fmt: skip
    ax.set_xlabel("expected latency = student + escalation rate × teacher, ms")
    ax.set_ylabel("cascade accuracy, %")
    ax.legend(fontsize=8, loc="lower right")


def _corruptions(r: dict, ax: Any) -> None:
    c = (r.get("validation") or {}).get("corruptions")
    if not c:
        _no_data(ax, "no corruption suite (validation did not run)")
        return
    names = list(c["mean_drop_points"])
    xs = range(len(names))
    for who, colour, dx in (("teacher", _TEACHER, -0.2), ("student", _STUDENT, 0.2)):
        ax.bar([x + dx for x in xs], [c["mean_drop_points"][n][who] for n in names], 0.4, color=colour,
               label=f"{who} (mean of severities)")  # fmt: skip
        for row in c["rows"]:
            x = names.index(row["corruption"]) + dx
            ax.plot([x], [row[f"{who}_drop_points"]], "o", ms=3, color="black")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(list(xs), names, fontsize=8)
    ax.set_ylabel("accuracy drop vs clean, points")
    ax.set_title(f"{c['samples']} test images per variant; dots = severities 1-3", fontsize=9)
    ax.legend(fontsize=8)


_DRAW: dict[str, tuple[str, Callable[[dict, Any], None]]] = {
    "plot-latency": ("Latency distribution per artifact", _latency),
    "plot-reliability": ("Reliability diagram before / after temperature scaling", _reliability),
    "plot-per-class": ("Per-class accuracy, teacher vs student", _per_class),
    "plot-sweep": ("Accuracy vs latency, with the budget and the chosen point", _sweep),
    "plot-cascade": ("Cascade: accuracy vs expected latency", _cascade),
    "plot-corruptions": ("Accuracy drop under corruptions, teacher vs student", _corruptions),
}


def render_plots(report: dict) -> list[Plot]:
    """Every plot of :data:`PLOT_IDS` for ``report``, as inline SVG."""
    out = []
    for plot_id in PLOT_IDS:
        title, draw = _DRAW[plot_id]
        fig = _figure()
        draw(report, fig.add_subplot())
        svg = re.sub(r"\s(width|height)=\"[\d.]+pt\"", "", _svg(fig, plot_id), count=2)
        out.append(Plot(plot_id, title, svg))
    return out
