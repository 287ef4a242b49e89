"""report.md, rendered from report.json only (so any report can be re-rendered)."""

from __future__ import annotations


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
    """One sentence a hardware team reads first."""
    gate = r["gate"]
    lat = next((x for x in gate["rules"] if x["name"] == "latency"), None)
    host = [e for e in r["student"]["latency"] if e["evidence"] == "measured-host"
            and e.get("artifact", "").startswith(f"student-{r['budget']['format']}-{r['budget']['precision']}")
            and e["stat"] == "p50"]  # fmt: skip
    fits = "fits" if lat and lat["passed"] else "does NOT fit"
    where = f"{lat['value']:.1f} ms ({lat['evidence']}" if lat else "? ms ("
    if host and lat and lat["evidence"] != "measured-host":
        where += f"; host-measured {host[0]['ms']:.2f} ms"
    drop = 100 * (r["teacher"]["accuracy"] - r["student"]["accuracy"])
    smaller = r["teacher"]["params"] / max(1, r["student"]["params"])
    failed = [x["name"] for x in gate["rules"] if not x["passed"]]
    verdict = "gate passed" if gate["passed"] else f"gate FAILED ({', '.join(failed)})"
    return (f"{fits} {r['target']['name']} at {where}), budget {r['budget_ms']:g} ms; "
            f"{-drop:+.1f} pt accuracy vs teacher; {smaller:.1f}x fewer parameters; {verdict}")  # fmt: skip


def _latency_table(entries: list[dict]) -> list[str]:
    rows = [
        "| ms | stat | evidence | precision | threads | runtime | artifact |",
        "|---:|---|---|---|---:|---|---|",
    ]
    for e in entries:
        rows.append(f"| {e['ms']:.3f} | {e['stat']} | {e['evidence']} | {e['precision']} | {e['threads']} "
                    f"| {e['runtime']} | {e.get('artifact', '-')} |")  # fmt: skip
    return rows


def render_markdown(r: dict) -> str:
    t, s = r["teacher"], r["student"]
    lines = [
        f"# edgekd deployment report: {r['target']['name']}",
        "",
        f"**{summary_line(r)}**",
        "",
        f"Target: {r['target']['description']}. Budget {r['budget_ms']:g} ms ({r['budget']['stat']}, "
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
        lines.append(f"| {rule['name']} | {rule['value']:.4g} | {rule['limit']:g} | {res} | {rule['evidence']} "
                     f"| {rule['detail']} |")  # fmt: skip
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
        f"Distillation: {s['distill']['loss']} (T={s['distill']['temperature']}, "
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
        "| artifact | format | precision | size | sha256 | runtime accuracy | agreement | max abs diff |",
        "|---|---|---|---:|---|---:|---:|---:|",
    ]
    for a in r["artifacts"]:
        p = a.get("parity") or {}
        lines.append(
            f"| {a['path']} | {a['format']} | {a['precision']} | {_mb(a['size_bytes'])} | `{a['sha256'][:12]}` "
            f"| {_pct(p.get('accuracy'))} | {_pct(p.get('agreement'))} | {p.get('max_abs_diff', float('nan')):.3g} |"
        )
    lines += ["", "## Run", "", f"Machine: {r['machine']['platform']}, torch {r['machine']['torch']}, "
              f"onnxruntime {r['machine']['onnxruntime']}.", "",
              "Stage times (s): " + ", ".join(f"{k} {v}" for k, v in r.get("timings_s", {}).items()) + ".",
              f"Cached stages reused: {', '.join(r['lineage']['cache_hits']) or 'none'}.", ""]  # fmt: skip
    return "\n".join(lines)
