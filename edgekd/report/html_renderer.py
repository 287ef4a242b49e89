"""report.html: one self-contained page (inline CSS and SVG, no external assets) rendered from report.json.

Summary first, then warnings with their suggested fixes, the gate, the plots of
:mod:`edgekd.report.plots`, and the validation tables.

Example:
    >>> page = render_html(json.load(open("build/cortex-a76/report.json")))  # doctest: +SKIP
"""

from __future__ import annotations

from edgekd.report.html_deployment import render_deployment
from edgekd.report.html_table import _e, _num, _pct, _table
from edgekd.report.markdown_renderer import summary_line
from edgekd.report.plots import render_plots

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
line-height:1.4;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.summary{font-size:1.15em;font-weight:600;background:#f3f6fa;border-left:4px solid #1f77b4;padding:.7em 1em}
.warn{background:#fff6e5;border-left:4px solid #e69500;padding:.4em 1em;margin:.4em 0}
.ok{color:#2a7a2a}.fail{color:#c62828;font-weight:600}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1em}
figure.plot{margin:0;border:1px solid #e5e5e5;padding:.5em}figure.plot svg{width:100%;height:auto}
figcaption{font-weight:600;margin-bottom:.3em}.muted{color:#777;font-size:.85em}
"""
# runs in the browser: marks the page once every plot holds its SVG (a test reads data-plots)
_SCRIPT = """
document.addEventListener("DOMContentLoaded", function () {
  var figs = document.querySelectorAll("figure.plot");
  var drawn = Array.prototype.filter.call(figs, function (f) { return f.querySelector("svg") !== null; });
  document.body.setAttribute("data-plots", String(drawn.length) + "/" + String(figs.length));
});
"""


def _warnings(r: dict) -> str:
    v = r.get("validation") or {}
    items = [f'<div class="warn">{_e(w)}</div>' for w in v.get("warnings", [])]
    return "".join(items) or '<p class="ok">No warnings: no slice flag and no failure mode triggered.</p>'


def _gate(r: dict) -> str:
    rows = [[_e(x["name"]), _num(x["value"]), _num(x["limit"], "g"),
             '<span class="ok">pass</span>' if x["passed"] else '<span class="fail">FAIL</span>',
             _e(x["evidence"]), _e(x["detail"])] for x in r["gate"]["rules"]]  # fmt: skip
    return _table(["rule", "value", "limit", "result", "evidence", "detail"], rows, {1, 2})


def _models(r: dict) -> str:
    t, s = r["teacher"], r["student"]
    rows = [[who, f"{m['params']:,}", f"{m['macs']:,}", _pct(m["accuracy"]), _num(m.get("ece"), ".4f"),
             _num(m.get("temperature"), ".3f") if who == "student" else "-"]
            for who, m in (("teacher", t), ("student", s))]  # fmt: skip
    return _table(["", "params", "MACs", "test accuracy", "ECE (T=1)", "temperature"], rows, {1, 2, 3, 4, 5})


def _validation(r: dict) -> str:
    v = r.get("validation")
    if not v:
        return "<p>Validation did not run for this report.</p>"
    parts = ["<h3>Failure modes</h3>"]
    rows = [[_e(f["name"]), '<span class="fail">triggered</span>' if f["triggered"] else '<span class="ok">no</span>',
             _e(f["finding"]), _e(f["suggested_fix"] or "-")] for f in v["failure_modes"]]  # fmt: skip
    parts.append(_table(["detector", "triggered", "finding", "suggested fix"], rows))
    ts = v["temperature_scaling"]
    parts.append("<h3>Calibration</h3>")
    rows = [[split, _num(x["temperature"], ".3f"), _num(x["ece_before"], ".4f"), _num(x["ece_after"], ".4f"),
             _num(x["nll_before"], ".4f"), _num(x["nll_after"], ".4f"), str(x["samples"])]
            for split, x in (("val (fit)", ts["val"]), ("test (held out)", ts["test"]))]  # fmt: skip
    parts.append(_table(["split", "T", "ECE before", "ECE after", "NLL before", "NLL after", "samples"], rows,
                        {1, 2, 3, 4, 5, 6}))  # fmt: skip
    mce = v["calibration"]["student_test"]["mce"]
    fit = ts["val"]
    parts.append(f"<p>T fitted on the validation split to minimise {_e(str(fit.get('objective', 'nll')).upper())}"
                 f" (NLL-optimal T = {_num(fit.get('nll_temperature'), '.3f')}).</p>")  # fmt: skip
    parts.append(f"<p>Student MCE on test (T=1): {_num(mce, '.4f')}. The temperature is stored in each artifact's "
                 "sidecar (<code>temperature</code>): divide the logits by it before softmax.</p>")  # fmt: skip
    ds = v["distillation_score"]
    ins = ds["inputs"]
    parts.append("<h3>Distillation score</h3>")
    parts.append(f"<p>DS = α·size ratio + (1−α)·(1 − accuracy ratio) = <b>{_num(ds['score'], '.4f')}</b> "
                 f"(policy {_e(ds['policy'])}, α = {ds['alpha']}; size {ins['student_size']:,.0f} / "
                 f"{ins['teacher_size']:,.0f} parameters = {_num(ds['size_ratio'], '.3f')}; accuracy "
                 f"{_pct(ins['student_accuracy'])} / {_pct(ins['teacher_accuracy'])} = "
                 f"{_num(ds['accuracy_ratio'], '.4f')}). Lower is better.</p>")  # fmt: skip
    c = v["cascade"]
    parts.append("<h3>Cascade</h3>")
    parts.append(f"<p>{_e(c['reason'])}. Student {_num(c['student_ms'], '.3f')} ms ({_e(c['student_ms_evidence'])}); "
                 f"teacher {_num(c['teacher_ms'], '.3f')} ms ({_e(c['teacher_ms_evidence'])}); target "
                 f"{_pct(c['target_accuracy'])} ({_e(c['target_rule'])}); {_e(c['probabilities'])}.</p>")  # fmt: skip
    corr = v.get("corruptions")
    if corr:
        parts.append("<h3>Corruption suite</h3>")
        rows = [[_e(n), f"{d['teacher']:.2f}", f"{d['student']:.2f}", f"{d['student'] - d['teacher']:+.2f}"]
                for n, d in corr["mean_drop_points"].items()]  # fmt: skip
        parts.append(_table(["corruption", "teacher drop, pt", "student drop, pt", "student − teacher"], rows,
                            {1, 2, 3}))  # fmt: skip
        parts.append(f"<p class=muted>{corr['samples']} test images, severities 1-3, seed {corr['seed']}; clean "
                     f"accuracy teacher {_pct(corr['clean']['teacher'])}, student {_pct(corr['clean']['student'])}."
                     "</p>")  # fmt: skip
    parts.append("<h3>Artifacts in their runtimes</h3>")
    rows = [[_e(a["name"]), _e(a["runtime"]), str(a["samples"]), _pct(a["accuracy"]), _num(a["ece"], ".4f")]
            for a in v["artifacts"]]  # fmt: skip
    parts.append(_table(["artifact", "runtime", "samples", "accuracy", "ECE"], rows, {2, 3, 4}))
    return "".join(parts)


def render_html(r: dict) -> str:
    """The whole page as one string."""

    title = f"edgekd deployment report: {r['target']['name']}"
    figures = "".join(
        f'<figure class="plot" id="{p.id}"><figcaption>{_e(p.title)}</figcaption>{p.svg}</figure>'
        for p in render_plots(r)
    )
    meta = (f"Budget {r['budget_ms']:g} ms ({_e(r['budget']['stat'])}, {r['budget']['threads']} thread(s), "
            f"{_e(r['budget']['format'])} {_e(r['budget']['precision'])}). Report schema {_e(r['schema_version'])}, "
            f"edgekd {_e(r['edgekd_version'])}, {_e(r['created'])}.")  # fmt: skip
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p class=summary id=summary>{_e(summary_line(r))}</p>"
        f"<p class=muted>{_e(r['target']['description'])}. {meta}</p>"
        f"<h2>Warnings</h2>{_warnings(r)}"
        f"<h2>Gate</h2>{_gate(r)}"
        f"<h2>Teacher vs student</h2>{_models(r)}"
        f"<h2>Deployment</h2>{render_deployment(r)}"
        f'<h2>Plots</h2><div class="plots">{figures}</div>'
        f"<h2>Validation</h2>{_validation(r)}"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
