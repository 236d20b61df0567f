#!/usr/bin/env bash
# Runs the benchmarks once and writes BENCHMARKS.md: the inline sync and async suites
# (criterion), the background mode (criterion, and heap bytes with a counting allocator), the
# durable mode on SQLite (enqueue, drain, persist = "on_failure", worker memory) and on
# PostgreSQL (worker processes sharing a store, crash failover, waiting callers), the durable
# mode beside its peers apalis-sqlite and apalis-postgres (benches/peers.rs), the unique and
# the transactional (outbox) enqueue, and the compile time of 300 #[retry] functions against
# 300 hand-written loops.
#
#   bash benches/run.sh            # everything
#   bash benches/run.sh durable    # the durable parts only (SQLite, PostgreSQL, peers, unique,
#                                  # outbox, RTT if that bench exists)
#   bash benches/run.sh inline     # the rest: inline, background and compile time
#
# benches/peers.rs alone took 38 minutes on a busy 2-core machine (apalis-sqlite's drain of
# 20,000 jobs: about 5 minutes a round, see its docs); the other parts were not timed at full
# size with it (the inline, background and compile-time parts took about 8 minutes before).
#
# `durable` and `inline` each keep the other parts' results of the last run (criterion's and the JSON files in
# $CARGO_TARGET_DIR/bench-results) and writes BENCHMARKS.md from them and the new ones.
#
# The PostgreSQL parts use $RETRY_BENCH_POSTGRES_URL; without it, a throw-away server of
# their own from .ci/postgres.sh with PostgreSQL's durable defaults (RETRY_PG_FSYNC=on: fsync
# and synchronous_commit on), stopped afterwards. $RETRY_TEST_POSTGRES_URL is not used: the
# tests' server runs with fsync off. RETRY_BENCH_QUICK=1 runs small sizes (a check of the
# harness, not figures).
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

WHAT="${1:-all}"
case "$WHAT" in
all)
    rm -rf "$CRITERION_HOME" "$RESULTS"
    ;;
durable)
    rm -f "$RESULTS"/{durable,durable_pg,durable_wait_pg,durable_unique,outbox,peers,durable_rtt}.jsonl
    ;;
inline)
    rm -rf "$CRITERION_HOME"
    rm -f "$RESULTS"/{alloc.jsonl,compile.json}
    ;;
*)
    echo "usage: bash benches/run.sh [durable|inline]" >&2
    exit 2
    ;;
esac
mkdir -p "$RESULTS"

python3 - "$RESULTS/machine.json" "${CRITERION_ARGS[*]}" "$WHAT" <<'PY'
import datetime, json, os, subprocess, sys
cpu = next(
    (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
    "unknown",
)
run = lambda *a: subprocess.run(a, capture_output=True, text=True).stdout.strip()
dirty = " (with uncommitted changes)" if run("git", "status", "--porcelain") else ""
# A partial run (durable, inline) keeps the other part's date, commit and load.
parts = {}
if sys.argv[3] != "all" and os.path.exists(sys.argv[1]):
    parts = json.load(open(sys.argv[1])).get("parts", {})
    parts.pop("all", None)
this = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "commit": run("git", "rev-parse", "--short", "HEAD") + dirty,
    "loadavg": " ".join(open("/proc/loadavg").read().split()[:3]),
}
parts[sys.argv[3]] = this
json.dump({
    **this,
    "nproc": run("nproc"),
    "cpu": cpu,
    "rustc": run("rustc", "-V"),
    "criterion_args": sys.argv[2],
    "parts": parts,
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

# A PostgreSQL server for the benchmark figures: $RETRY_BENCH_POSTGRES_URL, or one started
# here with durable defaults (never the tests' server, which runs with fsync off).
pg_started=
bench_pg_start() {
    if [ -n "${RETRY_BENCH_POSTGRES_URL:-}" ]; then
        return 0
    fi
    # The tests' URL, if any, must not leak into the benches (they fall back to it).
    unset RETRY_TEST_POSTGRES_URL
    # shellcheck source=../.ci/postgres.sh
    RETRY_PG_FSYNC=on RETRY_PG_PORT="${RETRY_PG_PORT:-54400}" source .ci/postgres.sh
    export RETRY_BENCH_POSTGRES_URL="$RETRY_TEST_POSTGRES_URL"
    pg_started=1
}
bench_pg_stop() {
    if [ -n "$pg_started" ]; then
        retry_pg_stop
        unset RETRY_BENCH_POSTGRES_URL
        pg_started=
    fi
}

# The durable mode on PostgreSQL: no-op calls completed/s by 1, 2 and 4 worker processes sharing
# one store (beside one on SQLite), the time from a worker's SIGKILL to its call running in
# another worker, enqueues/s; then how soon a caller waiting in another process learns of a
# success (Store::wait_for).
durable_pg_benches() {
    cargo bench -p retry-benches --bench durable_pg | tee "$RESULTS/durable_pg.jsonl"
    cargo bench -p retry-benches --bench durable_wait_pg | tee "$RESULTS/durable_wait_pg.jsonl"
}

# The durable mode beside apalis-sqlite and apalis-postgres: enqueue (1 and 64 callers), drain
# (1 worker process; on PostgreSQL also 4), enqueue-to-first-attempt latency; 20,000 no-op
# jobs, medians of 3 rounds (benches/peers.rs).
peers_benches() {
    cargo bench -p retry-benches --bench peers | tee "$RESULTS/peers.jsonl"
}

# A unique enqueue against a plain one, and enqueuing in the caller's transaction against a
# plain insert (SQLite and PostgreSQL).
enqueue_variant_benches() {
    cargo bench -p retry-benches --bench durable_unique | tee "$RESULTS/durable_unique.jsonl"
    cargo bench -p retry-benches --bench outbox | tee "$RESULTS/outbox.jsonl"
}

# The durable mode with a 1 ms round trip to the store, where that bench exists.
rtt_benches() {
    if grep -q '^name = "durable_rtt"' benches/Cargo.toml; then
        cargo bench -p retry-benches --bench durable_rtt | tee "$RESULTS/durable_rtt.jsonl"
    fi
}

# 300 #[retry] functions against 300 hand-written loops, `cargo build`, median of 3.
compile_time() {
    python3 benches/compile_time.py "$PWD" "$RESULTS/compile.json" 3
}

cargo bench -p retry-benches --no-run
if [ "$WHAT" != durable ]; then
    inline_benches
    if grep -rq RetryHandle retry-runtime/src; then
        background_benches
    fi
fi
if [ "$WHAT" != inline ]; then
    durable_benches
    bench_pg_start
    durable_pg_benches
    peers_benches
    enqueue_variant_benches
    rtt_benches
    bench_pg_stop
fi
if [ "$WHAT" != durable ]; then
    compile_time
fi
python3 benches/report.py "$CRITERION_HOME" "$RESULTS" BENCHMARKS.md
cat benches/why.md >> BENCHMARKS.md
echo "wrote BENCHMARKS.md"
