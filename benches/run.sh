#!/usr/bin/env bash
# Runs every benchmark once and writes BENCHMARKS.md: the inline sync and async suites
# (criterion), the background mode (criterion, and heap bytes with a counting allocator), the
# durable mode on SQLite (enqueue, drain, persist = "on_failure", worker memory) and on
# PostgreSQL (worker processes sharing a store, crash failover), and the compile time of 300
# #[retry] functions against 300 hand-written loops.
#
#   bash benches/run.sh            # about 8 minutes on two cores
#
# Build output goes to $CARGO_TARGET_DIR (default: target/); criterion's results to
# $CARGO_TARGET_DIR/criterion, cleared first so that every figure comes from this run.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$TARGET"
export CRITERION_HOME="$TARGET/criterion"
RESULTS="$TARGET/bench-results"
CRITERION_ARGS=(--warm-up-time 1 --measurement-time 2 --sample-size 30)

rm -rf "$CRITERION_HOME" "$RESULTS"
mkdir -p "$RESULTS"

python3 - "$RESULTS/machine.json" "${CRITERION_ARGS[*]}" <<'PY'
import datetime, json, os, subprocess, sys
cpu = next(
    (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
    "unknown",
)
run = lambda *a: subprocess.run(a, capture_output=True, text=True).stdout.strip()
dirty = " (with uncommitted changes)" if run("git", "status", "--porcelain") else ""
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "nproc": run("nproc"),
    "cpu": cpu,
    "rustc": run("rustc", "-V"),
    "commit": run("git", "rev-parse", "--short", "HEAD") + dirty,
    "loadavg": " ".join(open("/proc/loadavg").read().split()[:3]),
    "criterion_args": sys.argv[2],
}, open(sys.argv[1], "w"), indent=2)
PY

criterion_bench() {
    cargo bench -p retry-benches --bench "$1" -- "${CRITERION_ARGS[@]}"
}

# The inline mode: sync, then async on the real and on the paused clock.
inline_benches() {
    criterion_bench inline_sync
    criterion_bench inline_async
}

# The background mode: spawn time and wall time to completion against a hand-written
# tokio::spawn loop (criterion), then heap bytes per call (a counting global allocator).
background_benches() {
    criterion_bench background
    cargo bench -p retry-benches --bench background_alloc | tee "$RESULTS/alloc.jsonl"
}

# The durable mode on a SQLite file store (synchronous = FULL): enqueues/s with 1 and 64
# callers against a plain rusqlite loop, a worker's completions/s, persist = "on_failure"
# against inline, and the worker process's memory for a small and a large store. JSON lines;
# RETRY_BENCH_QUICK=1 (not set here) runs small sizes.
durable_benches() {
    cargo bench -p retry-benches --bench durable | tee "$RESULTS/durable.jsonl"
}

# The durable mode on PostgreSQL: no-op calls completed/s by 1, 2 and 4 worker processes sharing
# one store (beside one on SQLite), and the time from a worker's SIGKILL to its call running in
# another worker. Uses $RETRY_BENCH_POSTGRES_URL or $RETRY_TEST_POSTGRES_URL; without either, a
# throw-away server from .ci/postgres.sh, stopped afterwards.
durable_pg_benches() {
    local started=
    if [ -z "${RETRY_BENCH_POSTGRES_URL:-}${RETRY_TEST_POSTGRES_URL:-}" ]; then
        # shellcheck source=../.ci/postgres.sh
        source .ci/postgres.sh
        started=1
    fi
    cargo bench -p retry-benches --bench durable_pg | tee "$RESULTS/durable_pg.jsonl"
    # How soon a caller waiting in another process learns of a success (Store::wait_for).
    cargo bench -p retry-benches --bench durable_wait_pg | tee "$RESULTS/durable_wait_pg.jsonl"
    if [ -n "$started" ]; then
        retry_pg_stop
    fi
}

# 300 #[retry] functions against 300 hand-written loops, `cargo build`, median of 3.
compile_time() {
    python3 benches/compile_time.py "$PWD" "$RESULTS/compile.json" 3
}

cargo bench -p retry-benches --no-run
inline_benches
if grep -rq RetryHandle retry-runtime/src; then
    background_benches
fi
durable_benches
durable_pg_benches
compile_time
python3 benches/report.py "$CRITERION_HOME" "$RESULTS" BENCHMARKS.md
cat benches/why.md >> BENCHMARKS.md
echo "wrote BENCHMARKS.md"
