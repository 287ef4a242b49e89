"""edgekd.bench: run exported models and turn raw timings into evidence-tagged figures.

Modules:
    runner_base: the Runner protocol, BenchSettings, RunResult and helpers shared by runners.
    local_runner: runs ``bench_script.py`` on this host in a fresh process (``measured-host``).
    bench_script: the self-contained script every runner executes (also pushed to boards).
    stats: the only place raw samples become p50/p90/p99 (``summarize``, ``is_unstable``).
    energy: energy per inference, estimated from a target's power figures or read from RAPL.

Nothing heavy is imported here; runners load their runtime only when used.
"""
