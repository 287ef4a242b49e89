"""report.md, rendered from report.json only (so any report can be re-rendered).

Every string that can come from a user (target name and description, class names inside warnings and
findings, paths, runtime names, details) goes through :func:`md`, so it renders as the text it is:
it cannot break a table, open an HTML tag, start a code span or a link, or add a line.
"""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#!])")


def md(value: object) -> str:
    """``value`` as inert Markdown text: HTML escaped, Markdown punctuation backslashed, one line."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _mb(n: int | None) -> str:
    return f"{n / 1e6:.2f} MB" if n else "-"


def _pct(v: float | None) -> str:
    return f"{100 * v:.2f} %" if v is not None else "-"


def _measured_note(prune: dict) -> str:
    if prune.get("measured_ms") is None:
        return ""
    rounds = len(prune.get("measure_rounds", []))
    return f"; measured {prune['measured_ms']:.2f} ms as deployed on this machine ({rounds} search round(s))"


def summary_line(r: dict) -> str:
    """One sentence a hardware team reads first (latency at the budget's statistic, host figure alike)."""
    gate = r["gate"]
    lat = next((x for x in gate["rules"] if x["name"] == "latency"), None)
    stat = r["budget"].get("stat", "p50")
    host = [e for e in r["student"]["latency"] if e["evidence"] == "measured-host"
            and e.get("artifact", "").startswith(f"student-{r['budget']['format']}-{r['budget']['precision']}")
            and e["stat"] == stat]  # fmt: skip
    fits = "fits" if lat and lat["passed"] else "does NOT fit"
    where = f"{lat['value']:.1f} ms {stat} ({lat['evidence']}" if lat else "? ms ("
    if host and lat and lat["evidence"] != "measured-host":
        where += f"; host-measured {host[0]['ms']:.2f} ms"
    drop = 100 * (r["teacher"]["accuracy"] - r["student"]["accuracy"])
    smaller = r["teacher"]["params"] / max(1, r["student"]["params"])
    failed = [x["name"] for x in gate["rules"] if not x["passed"]]
    verdict = "gate passed" if gate["passed"] else f"gate FAILED ({', '.join(failed)})"
    line = (f"{fits} {r['target']['name']} at {where}), budget {r['budget_ms']:g} ms; "
            f"{-drop:+.1f} pt accuracy vs teacher; {smaller:.1f}x fewer parameters{_size_note(r)}; "
            f"{verdict}")  # fmt: skip
    if "validation" in r:
        n = len(r["validation"].get("warnings", []))
        line += f"; {n} warning{'s' if n != 1 else ''}"
    return line


def _size_note(r: dict) -> str:
    deployed = next((a for a in r.get("artifacts", []) if a.get("primary")), None)
    teacher = r["teacher"].get("size_bytes")
    if not deployed or not teacher or not deployed.get("size_bytes"):
        return ""
    return f", {teacher / deployed['size_bytes']:.1f}x smaller deployed ({deployed['precision']})"


def _latency_table(entries: list[dict]) -> list[str]:
    rows = [
        "| ms | stat | evidence | precision | threads | runtime | artifact |",
        "|---:|---|---|---|---:|---|---|",
    ]
    for e in entries:
        rows.append(f"| {e['ms']:.3f} | {md(e['stat'])} | {md(e['evidence'])} | {md(e['precision'])} | {e['threads']} "
                    f"| {md(e['runtime'])} | {md(e.get('artifact', '-'))} |")  # fmt: skip
    return rows


def render_markdown(r: dict) -> str:
    t, s = r["teacher"], r["student"]
    lines = [
        f"# edgekd deployment report: {md(r['target']['name'])}",
        "",
        f"**{md(summary_line(r))}**",
        "",
        f"Target: {md(r['target']['description'])}. Budget {r['budget_ms']:g} ms ({r['budget']['stat']}, "
        f"{r['budget']['threads']} thread(s), {r['budget']['format']} {r['budget']['precision']}). "
        f"Report schema {r['schema_version']}, edgekd {r['edgekd_version']}, {r['created']}.",
        "",
        "## Gate",
        "",
        "| rule | value | limit | result | evidence | detail |",
        "|---|---:|---:|---|---|---|",
    ]
    for rule in r["gate"]["rules"]:
        res = "pass" if rule["passed"] else "**FAIL**"
        lines.append(f"| {md(rule['name'])} | {rule['value']:.4g} | {rule['limit']:g} | {res} "
                     f"| {md(rule['evidence'])} | {md(rule['detail'])} |")  # fmt: skip
    lines += [
        "",
        "## Teacher vs student",
        "",
        "| | params | MACs | size | test accuracy |",
        "|---|---:|---:|---:|---:|",
        f"| teacher | {t['params']:,} | {t['macs']:,} | {_mb(t.get('size_bytes'))} | {_pct(t['accuracy'])} |",
        f"| student | {s['params']:,} | {s['macs']:,} | {_mb(s.get('size_bytes'))} | {_pct(s['accuracy'])} |",
        "",
        f"Pruning: ratio {s['prune']['ratio']:.3f} ({s['prune']['importance']} importance, channels rounded to "
        f"{s['prune']['round_to']}), predicted {s['prune']['predicted_ms']:.2f} ms against a target of "
        f"{s['prune']['target_ms']:.2f} ms{_measured_note(s['prune'])}. "
        f"Distillation: {md(s['distill']['loss'])} (T={s['distill']['temperature']}, "
        f"alpha={s['distill']['alpha']}), {s['distill']['epochs_run']} epoch(s), best validation accuracy "
        f"{_pct(s['distill']['best_val_accuracy'])}.",
        "",
        "### Teacher latency",
        "",
        *_latency_table(t["latency"]),
        "",
        "### Student latency",
        "",
        *_latency_table(s["latency"]),
        "",
        "Evidence levels: `measured-device` (on the target), `measured-emulated` (Arm emulation; never a "
        "device latency), `measured-host` (this machine), `predicted` (the target's latency model).",
        "",
        "## Artifacts",
        "",
        "| artifact | format | precision | int8 by | size | sha256 | runtime accuracy | agreement | max abs diff |",
        "|---|---|---|---|---:|---|---:|---:|---:|",
    ]
    for a in r["artifacts"]:
        p = a.get("parity") or {}
        lines.append(
            f"| {md(a['path'])} | {md(a['format'])} | {md(a['precision'])} | {md(_int8_by(a.get('quantization')))} "
            f"| {_mb(a['size_bytes'])} | `{a['sha256'][:12]}` "
            f"| {_pct(p.get('accuracy'))} | {_pct(p.get('agreement'))} | {p.get('max_abs_diff', float('nan')):.3g} |"
        )
    lines += _deployment_lines(r)
    lines += _validation_lines(r)
    lines += ["", "## Run", "", f"Machine: {md(r['machine']['platform'])}, torch {md(r['machine']['torch'])}, "
              f"onnxruntime {md(r['machine']['onnxruntime'])}.", "",
              "Stage times (s): " + ", ".join(f"{md(k)} {md(v)}" for k, v in r.get("timings_s", {}).items()) + ".",
              f"Cached stages reused: {md(', '.join(r['lineage']['cache_hits']) or 'none')}.", ""]  # fmt: skip
    return "\n".join(lines)


def _energy_table(entries: list[dict]) -> list[str]:
    rows = ["| mJ / inference | basis | method | latency evidence | precision | threads | artifact |",
            "|---:|---|---|---|---|---:|---|"]  # fmt: skip
    for e in entries:
        cells = [e.get("basis", "-"), e.get("method", "-"), e["evidence"], e.get("precision", "-"),
                 e.get("threads", "-"), e.get("artifact", "-")]  # fmt: skip
        rows.append(f"| {e['mj']:.3g} | " + " | ".join(md(c) for c in cells) + " |")
    return rows


def _deployment_lines(r: dict) -> list[str]:
    """Arm parity, int8 vs fp32 per runtime, energy: each figure with where it came from."""
    lines: list[str] = []
    arm = [(a, a["arm_parity"]) for a in r["artifacts"] if a.get("arm_parity")]
    if arm:
        lines += ["", "### Arm parity (int8 kernels on an emulated Arm core)", ""]
        for a, p in arm:
            if p.get("status") == "checked":
                lines.append(f"- {md(a['name'])}: top-1 agreement with PyTorch {_pct(p['agreement'])}, accuracy "
                             f"{_pct(p['accuracy'])}, max abs diff {p['max_abs_diff']:.3g} on {p['samples']} test "
                             f"images; {md(p['runtime'])} on qemu {md(p['qemu_cpu'])}, XNNPACK "
                             f"{'on' if p['xnnpack'] else 'OFF'} [measured-emulated]")  # fmt: skip
            else:
                lines.append(f"- {md(a['name'])}: not checked ({md(p.get('reason', 'skipped'))})")
    if r.get("int8_vs_fp32"):
        lines += ["", "### int8 vs fp32 on this host (p50, same threads)", "",
                  "| format | fp32 ms | int8 ms | speed-up | note |", "|---|---:|---:|---:|---|"]  # fmt: skip
        for c in r["int8_vs_fp32"]:
            lines.append(f"| {md(c['format'])} | {c['fp32_ms']:.3f} | {c['int8_ms']:.3f} | {c['speedup']:.2f}x "
                         f"| {md(c['note'])} |")  # fmt: skip
    for who in ("student", "teacher"):
        if r[who].get("energy"):
            lines += ["", f"### {who.capitalize()} energy per inference", "", *_energy_table(r[who]["energy"])]
    be = (r.get("validation") or {}).get("energy_breakeven")
    if be:
        lines += ["", "### Energy break-even", "", md(breakeven_sentence(be))]
    return lines


def breakeven_sentence(be: dict) -> str:
    """One sentence: distillation energy on the host vs the per-inference saving on the target."""
    head = (f"Distillation took {be['distill_seconds']:.0f} s at {be['host_power_w']:.1f} W "
            f"({be['distill_energy_j']:.0f} J on the {be['host_profile']} host); ")  # fmt: skip
    evidence = be["per_inference_evidence"]["student"]
    if be["inferences"] is None:
        return head + f"the student saves no energy per inference ({evidence}), so it never breaks even."
    return head + (f"the student saves {be['saved_mj_per_inference']:.3g} mJ per inference ({evidence}), "
                   f"so it breaks even after {be['inferences']:,} inferences.")  # fmt: skip


def _validation_lines(r: dict) -> list[str]:
    v = r.get("validation")
    if not v:
        return []
    lines = ["", "## Validation", "", "### Warnings", ""]
    lines += [f"- {md(w)}" for w in v["warnings"]] or ["None: no slice flag and no failure mode triggered."]
    lines += ["", "### Failure modes", "", "| detector | triggered | finding | suggested fix |", "|---|---|---|---|"]
    lines += [f"| {md(f['name'])} | {'**yes**' if f['triggered'] else 'no'} | {md(f['finding'])} "
              f"| {md(f['suggested_fix'] or '-')} |" for f in v["failure_modes"]]  # fmt: skip
    ts = v["temperature_scaling"]
    lines += ["", "### Calibration", "",
              f"Temperature T = {ts['val']['temperature']:.3f} fitted on {ts['val']['fit_samples']} validation images "
              f"to minimise {str(ts['val'].get('objective', 'nll')).upper()}{_nll_t(ts['val'])} "
              f"(stored in each artifact's sidecar). ECE (15 bins) validation {ts['val']['ece_before']:.4f} → "
              f"{ts['val']['ece_after']:.4f}; test {ts['test']['ece_before']:.4f} → {ts['test']['ece_after']:.4f}; "
              f"student MCE on test {v['calibration']['student_test']['mce']:.4f}."]  # fmt: skip
    ds = v["distillation_score"]
    lines += ["", "### Distillation score", "",
              f"DS = {ds['score']:.4f} (policy {md(ds['policy'])}, α {ds['alpha']}; size ratio {ds['size_ratio']:.3f}, "
              f"accuracy ratio {ds['accuracy_ratio']:.4f}; lower is better)."]  # fmt: skip
    c = v["cascade"]
    lines += ["", "### Cascade", "",
              f"{md(c['reason'])}. Student {c['student_ms']:.3f} ms ({md(c['student_ms_evidence'])}), teacher "
              f"{c['teacher_ms']:.3f} ms ({md(c['teacher_ms_evidence'])}), "
              f"target {_pct(c['target_accuracy'])}."]  # fmt: skip
    corr = v.get("corruptions")
    if corr:
        lines += ["", f"### Corruptions ({corr['samples']} test images, severities 1-3)", "",
                  "| corruption | teacher drop, pt | student drop, pt |", "|---|---:|---:|"]  # fmt: skip
        lines += [f"| {md(n)} | {d['teacher']:.2f} | {d['student']:.2f} |" for n, d in corr["mean_drop_points"].items()]
    return lines


def _nll_t(fit: dict) -> str:
    """`` (the NLL optimum is T = x)`` when the temperature was fitted on another objective."""
    t = fit.get("nll_temperature")
    return f" (the NLL optimum is T = {t:.3f})" if fit.get("objective") == "ece" and t is not None else ""


def _int8_by(q: dict | None) -> str:
    """How an artifact's int8 was made: ``QAT (qat-pt2e, val 87.1 %, 1 epoch)``, ``PTQ (256 images)`` or ``-``."""
    if not q:
        return "-"
    if q.get("mode") == "qat":
        return f"QAT ({q.get('method')}, val {_pct(q.get('val_accuracy'))}, {q.get('epochs')} epoch(s))"
    n = q.get("calibration_samples")
    return f"PTQ ({n} images)" if n else "PTQ"
