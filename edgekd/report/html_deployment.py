"""The HTML report's deployment section: latency, artifacts (x86 and Arm parity), int8 vs fp32, energy.

Every figure carries where it came from (evidence level; for energy also basis and method).
"""

from __future__ import annotations

from edgekd.report.html_table import _e, _num, _pct, _table
from edgekd.report.markdown_renderer import breakeven_sentence


def _latency(entries: list[dict]) -> str:
    rows = [[_num(e["ms"], ".3f"), _e(e["stat"]), _e(e["evidence"]), _e(e["precision"]), str(e["threads"]),
             _e(e["runtime"]), _e(e.get("artifact", "-"))] for e in entries]  # fmt: skip
    return _table(["ms", "stat", "evidence", "precision", "threads", "runtime", "artifact"], rows, {0, 4})


def _arm(a: dict) -> str:
    p = a.get("arm_parity")
    if not p:
        return "-"
    if p.get("status") != "checked":
        return _e(f"not checked: {p.get('reason', 'skipped')}")
    return _e(f"{100 * p['agreement']:.2f} % on {p['samples']} images ({p['qemu_cpu']}, measured-emulated)")


def _artifacts(r: dict) -> str:
    rows = []
    for a in r["artifacts"]:
        p = a.get("parity") or {}
        rows.append([_e(a["name"]), f"{a['size_bytes'] / 1e6:.2f} MB", f"<code>{_e(a['sha256'][:12])}</code>",
                     _pct(p.get("accuracy")), _pct(p.get("agreement")), _num(p.get("max_abs_diff"), ".3g"),
                     _arm(a)])  # fmt: skip
    head = ["artifact", "size", "sha256", "runtime accuracy", "agreement", "max abs diff", "Arm parity"]
    return _table(head, rows, {1, 3, 4, 5})


def _precisions(r: dict) -> str:
    rows = [[_e(c["format"]), _num(c["fp32_ms"], ".3f"), _num(c["int8_ms"], ".3f"), f"{c['speedup']:.2f}x",
             _e(c["note"])] for c in r.get("int8_vs_fp32") or []]  # fmt: skip
    if not rows:
        return "<p class=muted>No runtime was exported in both fp32 and int8.</p>"
    return _table(["format", "fp32 ms", "int8 ms", "speed-up", "note"], rows, {1, 2, 3})


def _energy(entries: list[dict]) -> str:
    rows = [[_num(e["mj"], ".3g"), _e(e.get("basis", "-")), _e(e.get("method", "-")), _e(e["evidence"]),
             _e(e.get("precision", "-")), _e(e.get("artifact", "-"))] for e in entries]  # fmt: skip
    return _table(["mJ / inference", "basis", "method", "latency evidence", "precision", "artifact"], rows, {0})


def render_deployment(r: dict) -> str:
    """Latency tables, artifacts, int8 vs fp32 and energy as HTML."""
    parts = ["<h3>Student latency</h3>", _latency(r["student"]["latency"]),
             "<h3>Teacher latency</h3>", _latency(r["teacher"]["latency"]),
             "<h3>Artifacts</h3>", _artifacts(r),
             "<h3>int8 vs fp32 on this host (p50, same threads)</h3>", _precisions(r)]  # fmt: skip
    for who in ("student", "teacher"):
        if r[who].get("energy"):
            parts += [f"<h3>{who.capitalize()} energy per inference</h3>", _energy(r[who]["energy"])]
    be = (r.get("validation") or {}).get("energy_breakeven")
    if be:
        parts += ["<h3>Energy break-even</h3>", f"<p>{_e(breakeven_sentence(be))}</p>"]
    parts.append(
        "<p class=muted>Evidence levels: measured-device (on the target), measured-emulated (Arm emulation, "
        "never a device latency), measured-host (this machine), predicted (the target's latency model).</p>"
    )
    return "".join(parts)
