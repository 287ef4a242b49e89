#!/usr/bin/env bash
# Build and gate ONE target in CI (ci/github-actions.yml and ci/gitlab-ci.yml call it per matrix entry).
#
#   ci/build_and_gate.sh TARGET [OUT_DIR]        (OUT_DIR default: build/TARGET)
#
# 1. `edgekd build` writes OUT_DIR/report.{json,md,html}. Its exit code 1 (its own gate failed, or no
#    pruning ratio meets the budget) does not stop this script when report.json exists: step 2 decides.
#    Exit codes 2 (bad input/config) and 3 (tool chain/runner) stop it with that code.
# 2. `edgekd gate OUT_DIR/report.json --junit OUT_DIR/gate-junit.xml` (one JUnit testcase per rule),
#    plus `--baseline B --max-regression PCT` when B = $EDGEKD_BASELINE_DIR/TARGET/report.json exists
#    (a report of the default branch, fetched by the CI job), and `--rules $EDGEKD_GATE_RULES` if set.
#
# Exit code: the gate's (0 passed, 1 failed, 2 bad input, 3 tool chain). Environment:
#   EDGEKD                 edgekd executable [.venv/bin/edgekd]
#   EDGEKD_BUILD_ARGS      extra `edgekd build` options, e.g. "--epochs 2" (split on spaces)
#   EDGEKD_BASELINE_DIR    folder holding TARGET/report.json of the baseline build [none]
#   EDGEKD_MAX_REGRESSION  allowed regression vs the baseline [10%: shared CI runners are noisy]
#   EDGEKD_GATE_RULES      a gate rules YAML [none: the target profile's budgets]
set -uo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: ci/build_and_gate.sh TARGET [OUT_DIR]" >&2
    exit 2
fi
target=$1
out=${2:-build/$target}
edgekd=${EDGEKD:-.venv/bin/edgekd}

# shellcheck disable=SC2086  # EDGEKD_BUILD_ARGS is a list of options
"$edgekd" build --target "$target" --out "$out" --no-progress ${EDGEKD_BUILD_ARGS:-}
built=$?
if [ "$built" -ne 0 ] && [ "$built" -ne 1 ]; then
    echo "ci: edgekd build for $target failed with exit code $built" >&2
    exit "$built"
fi
if [ ! -f "$out/report.json" ]; then
    echo "ci: edgekd build for $target exited $built without $out/report.json; nothing to gate" >&2
    exit "$((built == 0 ? 2 : built))"
fi

args=(gate "$out/report.json" --junit "$out/gate-junit.xml")
baseline="${EDGEKD_BASELINE_DIR:-}/$target/report.json"
if [ -n "${EDGEKD_BASELINE_DIR:-}" ] && [ -f "$baseline" ]; then
    echo "ci: gating $target against the baseline $baseline"
    args+=(--baseline "$baseline" --max-regression "${EDGEKD_MAX_REGRESSION:-10%}")
else
    echo "ci: no baseline report for $target; gating against the budgets only"
fi
if [ -n "${EDGEKD_GATE_RULES:-}" ]; then
    args+=(--rules "$EDGEKD_GATE_RULES")
fi
"$edgekd" "${args[@]}"
gated=$?
echo "ci: edgekd gate for $target exited $gated (JUnit: $out/gate-junit.xml)"
exit "$gated"
