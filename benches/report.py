#!/usr/bin/env python3
"""Writes BENCHMARKS.md from one run of benches/run.sh.

Usage: report.py CRITERION_DIR RESULTS_DIR OUT_MD

Reads CRITERION_DIR/**/new/{benchmark,estimates}.json (the median and its 95% confidence
interval), RESULTS_DIR/alloc.jsonl (benches/background_alloc.rs), RESULTS_DIR/durable.jsonl
(benches/durable.rs), RESULTS_DIR/durable_pg.jsonl (benches/durable_pg.rs),
RESULTS_DIR/peers.jsonl (benches/peers.rs: the durable mode beside apalis), durable_unique.jsonl,
outbox.jsonl, durable_wait_pg.jsonl and durable_rtt.jsonl (each section says "not measured"
when its file is missing), RESULTS_DIR/compile.json (benches/compile_time.py) and RESULTS_DIR/machine.json
(benches/run.sh). Every ratio is to the hand-written loop (for the durable enqueue: the plain
rusqlite loop) measured in the same run.
"""

import json
import statistics
import math
import pathlib
import sys

SCENARIOS = ["success", "k1-zero", "k1-fixed", "k1-exp", "k4-zero", "k4-fixed", "k4-exp"]
SYNC = ["direct", "hand", "retry", "backon", "retry-crate", "backoff"]
ASYNC = ["direct", "hand", "hand-skip0", "retry", "backon", "tryhard", "tokio-retry2", "tokio-retry"]
HEADINGS = {
    "direct": "direct call",
    "hand": "hand loop",
    "hand-skip0": "hand loop, skips 0",
    "retry": "`#[retry]`",
    "backon": "backon",
    "retry-crate": "retry",
    "tryhard": "tryhard",
    "tokio-retry2": "tokio-retry2",
    "backoff": "backoff",
    "tokio-retry": "tokio-retry",
}
BACKGROUND_N = 10_000


def load_criterion(root):
    """full_id -> (median, lower, upper), in nanoseconds."""
    out = {}
    for est in pathlib.Path(root).glob("**/new/estimates.json"):
        meta = json.loads((est.parent / "benchmark.json").read_text())
        med = json.loads(est.read_text())["median"]
        ci = med["confidence_interval"]
        out[meta["full_id"]] = (med["point_estimate"], ci["lower_bound"], ci["upper_bound"])
    return out


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def ratio(a, b):
    """a / b, with the range the two confidence intervals allow."""
    return a[0] / b[0], a[1] / b[2], a[2] / b[1]


def fmt_ratio(r):
    x = r[0]
    if x >= 0.1:
        return f"{x:.2f}×"
    # Two significant digits, without an exponent.
    return f"{x:.{max(2, 1 - math.floor(math.log10(x)))}f}×"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def inline_table(crit, flavor, contestants):
    rows = []
    for s in SCENARIOS:
        hand = crit.get(f"{flavor}/{s}/hand")
        row = [f"`{s}`"]
        for c in contestants:
            m = crit.get(f"{flavor}/{s}/{c}")
            if m is None:
                row.append("–")
            elif hand is None:
                row.append(fmt_time(m[0]))
            else:
                row.append(f"{fmt_time(m[0])} ({fmt_ratio(ratio(m, hand))})")
        rows.append(row)
    return table(["scenario"] + [HEADINGS[c] for c in contestants], rows)


def per_retry_table(crit, flavors):
    """(T(k = 4, zero) - T(success)) / 4 per contestant: the cost of one zero-delay retry."""
    rows = []
    for flavor, contestants in flavors:
        hand = None
        cells = []
        for c in contestants:
            base = crit.get(f"{flavor}/success/{c}") or crit.get(f"{flavor}/success/hand")
            k4 = crit.get(f"{flavor}/k4-zero/{c}")
            if base is None or k4 is None:
                cells.append(None)
                continue
            cells.append((k4[0] - base[0]) / 4)
            if c == "hand":
                hand = cells[-1]
        row = [f"`{flavor}`"]
        for v in cells:
            if v is None:
                row.append("–")
            elif hand and hand > 0:
                row.append(f"{fmt_time(max(v, 0))} ({v / hand:.2f}×)")
            else:
                row.append(fmt_time(max(v, 0)))
        rows.append(row)
    return rows


class Goals:
    def __init__(self):
        self.rows = []

    def add(self, goal, figure, r, target, below=False):
        """`r` is (ratio, low, high) or None; the goal is `ratio <= target` (`< target` if
        `below`)."""
        if r is None:
            self.rows.append([goal, figure, f"≤ {target}×", "not measured", "–", "–"])
            return
        met = r[0] < target if below else r[0] <= target
        if met:
            verdict = "**met**"
        else:
            verdict = f"**missed** by {100 * (r[0] / target - 1):.0f}%"
        bound = f"< {target}×" if below else f"≤ {target}×"
        rng = f"{r[1]:.2f}–{r[2]:.2f}×" if len(r) == 3 else "–"
        self.rows.append([goal, figure, bound, f"{r[0]:.2f}×", rng, verdict])

    def render(self):
        return table(
            ["goal", "figure", "target", "measured", "95% CI range", "verdict"], self.rows
        )


def crit_ratio(crit, a, b):
    if a in crit and b in crit:
        return ratio(crit[a], crit[b])
    return None


def load_durable(path):
    """The `durable-result: {json}` lines of benches/durable.rs, or None."""
    if not path.exists():
        return None
    recs = [
        json.loads(line[len("durable-result: ") :])
        for line in path.read_text().splitlines()
        if line.startswith("durable-result: ")
    ]
    return recs or None


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def fmt_rate(x):
    return f"{x:,.0f}/s"


def verdict(met, miss_pct):
    return "**met**" if met else f"**missed** by {miss_pct:.0f}%"


# The targets of the durable goals (issue 9). The memory target is ours: "does not grow with
# the calls in the store" read as: 10× the calls, at most 1.5× the growth.
DURABLE_ENQUEUE_RATIO = 20.0
DURABLE_DRAIN_PER_S = 20_000.0
DURABLE_ON_FAILURE_RATIO = 1.05
DURABLE_MEMORY_RATIO = 1.5


def durable_section(recs):
    """The "Durable calls (SQLite)" section, as a list of markdown blocks."""
    md = ["## Durable calls (SQLite)\n"]
    if recs is None:
        md.append("Not measured in this run (no `durable.jsonl`).\n")
        return md
    setup = next((r for r in recs if r["kind"] == "setup"), {})
    enq = [r for r in recs if r["kind"] == "enqueue"]
    plain = [r["per_s"] for r in enq if r["who"] == "plain"]
    one = [r["per_s"] for r in enq if r["who"] == "durable" and r["callers"] == 1]
    many_recs = [r for r in enq if r["who"] == "durable" and r["callers"] > 1]
    many = [r["per_s"] for r in many_recs]
    callers = many_recs[0]["callers"] if many_recs else 64
    drains = [r for r in recs if r["kind"] == "drain"]
    on_failure = {r["flavor"]: r for r in recs if r["kind"] == "on_failure"}
    memory = sorted((r for r in recs if r["kind"] == "memory"), key=lambda r: r["n"])
    rounds = max((r["round"] for r in enq), default=0) + 1

    if setup.get("quick"):
        md.append(
            "**Quick run** (`RETRY_BENCH_QUICK=1`): small sizes and one round, a check of the "
            "harness; these figures are not the benchmark's.\n"
        )
    md.append(
        f"`benches/durable.rs`: store files in `{setup.get('dir', '?')}` "
        f"({setup.get('fs', '?')}), SQLite {setup.get('sqlite', '?')}, every store fresh, "
        "`sqlite:PATH` (WAL, `synchronous = FULL`). The durable function is "
        "`#[retry(mode = \"durable\", max = 3, delay = \"10ms\")] async fn noop(n: u64) -> "
        "Result<u64, String>`, whose body returns `Ok(n)`. Rates are medians over "
        f"{rounds} round{'s' if rounds != 1 else ''}, each round: the plain loop (first in even "
        f"rounds, last in odd ones), 1 caller, {callers} callers, then the drain of the "
        f"{callers} callers' store.\n"
    )
    md.append(
        f"- **Enqueue**: calls of `noop(i).await` (each returns once its call is committed) "
        f"from 1 task, and from {callers} tokio tasks at once on a multi-thread runtime (one "
        "worker thread per core), against a plain `rusqlite` loop in the same run: the "
        "store's own table and indexes (its schema file), WAL, `synchronous = FULL`, one "
        "`BEGIN IMMEDIATE; INSERT; COMMIT` per row, the same row (a fresh ID, the function's "
        "name, `{\"n\":i}`, the times). Each starts with 50 untimed commits in its fresh "
        "file (the drain then runs those 50 as well).\n"
        f"- **Drain**: the store the {callers} callers filled, run by one `Worker` "
        "(concurrency " + str(drains[0]["concurrency"] if drains else "?") + ", default "
        "batch and lease): from the worker's start until `Store::stats` (polled every 10 ms) "
        "counts every call succeeded.\n"
        "- **`persist = \"on_failure\"`**: the same body as `#[retry(mode = \"durable\", "
        "persist = \"on_failure\", max = 3, delay = \"10ms\")]` and as `#[retry(max = 3, "
        "delay = \"10ms\")]` (inline), sync and async, first attempt successful (so the "
        "durable one writes nothing: checked). Timed loops of "
        + (f"{next(iter(on_failure.values()))['iters']:,}" if on_failure else "?")
        + " calls (async: awaited in one `block_on` of a current-thread runtime), rounds "
        "interleaved, median per contestant.\n"
        "- **Memory**: a child process (the bench binary again) opens a store filled "
        "beforehand, starts a worker and drains it, sampling `VmRSS` and `RssAnon` every "
        "2 ms, counting the Rust heap's live bytes (a counting global allocator) and reading "
        "SQLite's own heap (`sqlite3_memory_highwater`, which the Rust count does not see). "
        "Growth = peak minus the value just before the worker started.\n"
    )

    rows = []

    def goal(name, figure, target, measured, met, miss):
        rows.append([name, figure, target, measured, verdict(met, miss)])

    if plain and many:
        r = median(many) / median(plain)
        goal(
            f"enqueue, {callers} callers",
            f"durable calls/s ÷ plain loop rows/s",
            f"≥ {DURABLE_ENQUEUE_RATIO:.0f}×",
            f"{r:.1f}×",
            r >= DURABLE_ENQUEUE_RATIO,
            100 * (1 - r / DURABLE_ENQUEUE_RATIO),
        )
    if drains:
        d = median([r["per_s"] for r in drains])
        goal(
            "worker throughput",
            "no-op calls completed/s, one worker",
            f"≥ {DURABLE_DRAIN_PER_S:,.0f}/s",
            fmt_rate(d),
            d >= DURABLE_DRAIN_PER_S,
            100 * (1 - d / DURABLE_DRAIN_PER_S),
        )
    for flavor in ("sync", "async"):
        if flavor in on_failure:
            r = on_failure[flavor]["ratio"]
            goal(
                f"`persist = \"on_failure\"` success, {flavor}",
                "ns/call ÷ inline `#[retry]`",
                f"≤ {DURABLE_ON_FAILURE_RATIO}×",
                f"{r:.2f}×",
                r <= DURABLE_ON_FAILURE_RATIO,
                100 * (r / DURABLE_ON_FAILURE_RATIO - 1),
            )
    if len(memory) >= 2:
        small, large = memory[0], memory[-1]
        for label, key in (
            ("Rust heap, peak live bytes", "heap_peak_growth_bytes"),
            ("resident memory (`VmRSS`)", "rss_growth_kib"),
        ):
            a, b = small[key], large[key]
            r = b / a if a > 0 else float("inf")
            goal(
                f"worker memory, {label}",
                f"growth draining {large['n']:,} calls ÷ {small['n']:,} calls",
                f"≤ {DURABLE_MEMORY_RATIO}× (for {large['n'] / small['n']:.0f}× the calls)",
                f"{r:.2f}×",
                r <= DURABLE_MEMORY_RATIO,
                100 * (r / DURABLE_MEMORY_RATIO - 1),
            )
    md.append(table(["goal", "figure", "target", "measured", "verdict"], rows))
    md.append("")

    if plain or one or many:
        erows = []
        base = median(plain) if plain else None
        for name, xs, n in (
            ("plain rusqlite loop, 1 row per transaction", plain, "plain"),
            ("durable, 1 caller", one, 1),
            (f"durable, {callers} callers", many, callers),
        ):
            if not xs:
                continue
            m = median(xs)
            erows.append(
                [
                    name,
                    fmt_rate(m),
                    ", ".join(f"{x:,.0f}" for x in xs),
                    f"{m / base:.2f}×" if base else "–",
                ]
            )
        md.append(table(["enqueue", "median", "rounds (per s)", "÷ plain loop"], erows))
        md.append("")
    if drains:
        d = drains[0]
        md.append(
            table(
                ["drain", "median", "rounds (per s)"],
                [
                    [
                        f"{d['n']:,} no-op calls, one worker, concurrency {d['concurrency']}",
                        fmt_rate(median([r["per_s"] for r in drains])),
                        ", ".join(f"{r['per_s']:,.0f}" for r in drains),
                    ]
                ],
            )
        )
        md.append("")
    if on_failure:
        orows = []
        for flavor in ("sync", "async"):
            if flavor in on_failure:
                r = on_failure[flavor]
                orows.append(
                    [
                        flavor,
                        fmt_time(r["inline_ns"]),
                        fmt_time(r["on_failure_ns"]),
                        f"{r['ratio']:.2f}×",
                    ]
                )
        md.append(
            table(
                ["first-attempt success", "inline `#[retry]`", "`persist = \"on_failure\"`", "ratio"],
                orows,
            )
        )
        md.append("")
    if memory:
        mrows = []
        for r in memory:
            mrows.append(
                [
                    f"{r['n']:,}",
                    f"{r['drain_s']:.2f} s",
                    f"{r['rss_before_kib'] / 1024:.1f} MiB",
                    f"{r['rss_growth_kib'] / 1024:.2f} MiB "
                    f"({r['rss_growth_bytes_per_call']:.0f} B/call)",
                    f"{r.get('rss_anon_growth_kib', 0) / 1024:.2f} MiB",
                    f"{r['heap_peak_growth_bytes'] / 1024:.0f} KiB "
                    f"({r['heap_peak_growth_bytes_per_call']:.1f} B/call)",
                    f"{r['sqlite_heap_peak_growth_bytes'] / 1024:.0f} KiB"
                    if "sqlite_heap_peak_growth_bytes" in r
                    else "–",
                ]
            )
        md.append(
            table(
                [
                    "calls in the store",
                    "drain time",
                    "RSS before",
                    "RSS growth (peak)",
                    "`RssAnon` growth",
                    "Rust heap growth (peak live)",
                    "SQLite heap growth (peak)",
                ],
                mrows,
            )
        )
        md.append("")
    return md


# The targets of the PostgreSQL goals: completions/s with 4 worker processes; each added
# worker count at least as fast as the one before; the failover within the lease plus 1 s.
DURABLE_PG_PER_S = 10_000.0
DURABLE_PG_FAILOVER_SLACK_MS = 1_000.0


def load_durable_pg(path):
    """The `durable-pg-result: {json}` lines of benches/durable_pg.rs, or None."""
    if not path.exists():
        return None
    recs = [
        json.loads(line[len("durable-pg-result: ") :])
        for line in path.read_text().splitlines()
        if line.startswith("durable-pg-result: ")
    ]
    return recs or None


def durable_pg_section(recs):
    """The "Durable calls (PostgreSQL)" section, as a list of markdown blocks."""
    md = ["## Durable calls (PostgreSQL)\n"]
    if recs is None:
        md.append("Not measured in this run (no `durable_pg.jsonl`).\n")
        return md
    if any(r["kind"] == "skipped" for r in recs):
        md.append("Skipped in this run: no PostgreSQL server (no URL, and none started).\n")
        return md
    setup = next((r for r in recs if r["kind"] == "setup"), {})
    runs = [r for r in recs if r["kind"] == "throughput"]
    failovers = [r for r in recs if r["kind"] == "failover"]
    pg = {}
    for r in runs:
        if r["store"] == "postgres":
            pg.setdefault(r["workers"], []).append(r["per_s"])
    sqlite = [r["per_s"] for r in runs if r["store"] == "sqlite"]
    rounds = setup.get("rounds", 1)

    if setup.get("quick"):
        md.append(
            "**Quick run** (`RETRY_BENCH_QUICK=1`): small sizes and one round, a check of the "
            "harness; these figures are not the benchmark's.\n"
        )
    md.append(
        f"`benches/durable_pg.rs`: PostgreSQL {setup.get('server_version', '?')} on the same "
        f"{setup.get('threads', '?')}-core machine as the workers (the server `benches/run.sh` "
        "starts with `.ci/postgres.sh` and `RETRY_PG_FSYNC=on`: PostgreSQL's defaults, "
        "`fsync = on`, `synchronous_commit = on`, unless `RETRY_BENCH_POSTGRES_URL` names "
        "another; the peers' and the RTT sections' setup lines print the settings they "
        "read), a fresh schema per measurement. The durable "
        "function is `#[retry(mode = \"durable\", name = \"bench::pg_noop\", max = 3, "
        "delay = \"10ms\")] async fn pg_noop(n: u64) -> Result<u64, String>`, whose body "
        "returns `Ok(n)`.\n"
    )
    md.append(
        f"- **Throughput**: {setup.get('n', 0):,} calls stored first, then 1, 2 or 4 worker "
        "processes (the bench binary again, one `Worker` each, concurrency "
        f"{setup.get('concurrency', '?')}, batch {setup.get('batch', '?')}) open the store; "
        "the clock runs from the moment all are told to start until no unfinished call is "
        "left (`Store::next_due` polled every 10 ms, then `Store::stats` confirms every call "
        "succeeded). Beside them, in the same run, one worker process on a fresh SQLite file "
        f"store (WAL, `synchronous = FULL`, SQLite {setup.get('sqlite', '?')}). Medians over "
        f"{rounds} round{'s' if rounds != 1 else ''}, the order rotating between rounds.\n"
        "- **Failover**: worker process A claims a call whose body sleeps for an hour; worker "
        "process B (same lease) is running and idle. Right after A renews the lease (so a "
        "whole lease is left: the worst case), A is killed with SIGKILL. Measured: from the "
        "kill to the start of B's attempt of that call (wall clock, B's attempt prints its "
        "start).\n"
    )

    rows = []

    def goal(name, figure, target, measured, met, miss):
        rows.append([name, figure, target, measured, verdict(met, miss)])

    med = {w: median(xs) for w, xs in sorted(pg.items())}
    if 4 in med:
        d = med[4]
        goal(
            "throughput, 4 worker processes",
            "no-op calls completed/s, one PostgreSQL store",
            f"≥ {DURABLE_PG_PER_S:,.0f}/s",
            fmt_rate(d),
            d >= DURABLE_PG_PER_S,
            100 * (1 - d / DURABLE_PG_PER_S),
        )
    counts = sorted(med)
    for lo, hi in zip(counts, counts[1:]):
        r = med[hi] / med[lo]
        goal(
            f"scaling, {lo} → {hi} worker processes",
            f"completed/s with {hi} ÷ with {lo}",
            "≥ 1.00× (does not fall)",
            f"{r:.2f}×",
            r >= 1.0,
            100 * (1 - r),
        )
    if failovers:
        worst = max(r["kill_to_start_ms"] for r in failovers)
        lease = failovers[0]["lease_ms"]
        target = lease + DURABLE_PG_FAILOVER_SLACK_MS
        goal(
            f"failover, lease {lease / 1000:g} s",
            f"SIGKILL → attempt running in another worker (worst of {len(failovers)})",
            f"< {target / 1000:g} s (lease + 1 s)",
            f"{worst / 1000:.3f} s",
            worst < target,
            100 * (worst / target - 1),
        )
    md.append(table(["goal", "figure", "target", "measured", "verdict"], rows))
    md.append("")

    trows = []
    if sqlite:
        trows.append(
            [
                "SQLite, 1 worker process",
                fmt_rate(median(sqlite)),
                ", ".join(f"{x:,.0f}" for x in sqlite),
            ]
        )
    for w, xs in sorted(pg.items()):
        trows.append(
            [
                f"PostgreSQL, {w} worker process{'es' if w != 1 else ''}",
                fmt_rate(median(xs)),
                ", ".join(f"{x:,.0f}" for x in xs),
            ]
        )
    if trows:
        md.append(table(["store, workers", "median", "rounds (per s)"], trows))
        md.append("")
    if failovers:
        frows = [
            [
                str(r["trial"] + 1),
                f"{r['lease_ms'] / 1000:g} s",
                f"{r['lease_left_at_kill_ms']:.0f} ms",
                f"{r['kill_to_start_ms']:.0f} ms",
                f"{r['after_expiry_ms']:.0f} ms",
            ]
            for r in failovers
        ]
        md.append(
            table(
                [
                    "trial",
                    "lease",
                    "lease left at the kill",
                    "kill → B's attempt starts",
                    "after the lease ran out",
                ],
                frows,
            )
        )
        md.append("")
    return md


# ---------------------------------------------------------------- issue 20: peers and goals


def load_jsonl(path, prefix):
    """The `PREFIX {json}` lines of a bench's output file, or None (no file, no lines)."""
    path = pathlib.Path(path)
    if not path.exists():
        return None
    recs = []
    for line in path.read_text().splitlines():
        if line.startswith(prefix):
            try:
                recs.append(json.loads(line[len(prefix) :]))
            except json.JSONDecodeError:
                pass
    return recs or None


PEER_NAMES = {
    "retry": "`#[retry]` durable",
    "apalis-sqlite": "apalis-sqlite",
    "apalis-postgres": "apalis-postgres",
}
PEERS = ["apalis-sqlite", "apalis-postgres"]

# The durable goals of issue 20 ("speed").
PEERS_SQLITE_DRAIN_PER_S = 20_000.0
PEERS_SQLITE_DRAIN_VS_PEER = 3.0
PEERS_PG_DRAIN_PER_S = 10_000.0
PEERS_PG_DRAIN_VS_PEER = 1.5
PEERS_PG_ENQUEUE_SCALE = 10.0
PEERS_LATENCY_MS = 5.0
PEERS_MEMORY_RATIO = 1.5


def peer_workloads(recs):
    """{(store, order, workload label, lower is better): {contender: [values of the rounds]}},
    `order` following the issue's table: enqueue 1 and 64 callers, drain 1 and 4 processes,
    latency."""
    out = {}
    for r in recs:
        kind = r.get("kind")
        if kind == "enqueue":
            key = (r["store"], r["callers"], f"enqueue, {r['callers']} caller{'s' if r['callers'] != 1 else ''}", False)
            value = r["per_s"]
        elif kind == "drain":
            p = r["processes"]
            key = (
                r["store"],
                1000 + p,
                f"drain, {p} worker process{'es' if p != 1 else ''} (concurrency {r['concurrency']})",
                False,
            )
            value = r["per_s"]
        elif kind == "latency":
            key = (r["store"], 10_000, "enqueue-to-first-attempt latency, median", True)
            value = r["median_ms"]
        else:
            continue
        out.setdefault(key, {}).setdefault(r["contender"], []).append(value)
    return out


def fmt_value(v, lower):
    return f"{v:.1f} ms" if lower else fmt_rate(v)


def peers_section(recs):
    """The "Durable peers" section (benches/peers.rs), as a list of markdown blocks."""
    md = ["## Durable calls beside their peers (apalis)\n"]
    if recs is None:
        md.append("Not measured in this run (no `peers.jsonl`).\n")
        return md
    setup = next((r for r in recs if r["kind"] == "setup"), {})
    if setup.get("quick"):
        md.append(
            "**Quick run** (`RETRY_BENCH_QUICK=1`): small sizes and one round, a check of the "
            "harness; these figures are not the benchmark's.\n"
        )
    pg = (
        f"PostgreSQL {setup.get('postgres_version')} (`fsync = {setup.get('postgres_fsync')}`, "
        f"`synchronous_commit = {setup.get('postgres_synchronous_commit')}`)"
        if setup.get("postgres_version")
        else "PostgreSQL not measured (no server)"
    )
    rounds = setup.get("rounds", "?")
    md.append(
        f"`benches/peers.rs`: the same {setup.get('n', 0):,} no-op jobs for every contender, a "
        f"fresh store per measurement, medians of {rounds} round{'s' if rounds != 1 else ''} "
        "(the contenders' order rotating). SQLite "
        f"{setup.get('sqlite', '?')}, WAL and `synchronous = FULL` for every contender "
        "(apalis-sqlite's `setup` sets `synchronous = OFF` on its own connection; that pool is "
        "closed before anything is measured, the producers' connections set FULL, its worker's "
        "hook pool keeps SQLite's default, FULL); "
        f"{pg}. apalis {setup.get('apalis', '?')} with the crates' defaults (`Config::default()`: "
        "batch 10, results persisted, tasks locked) and their READMEs' event-driven workers "
        "(SQLite: the update-hook pool and a 500 ms interval; PostgreSQL: `with_pubsub()`, "
        "LISTEN/NOTIFY, and a 5 s interval), `concurrency(32)`; ours: `Worker` concurrency "
        f"{setup.get('concurrency', 32)}, batch {setup.get('batch', 64)}.\n"
    )
    md.append(
        "- **Enqueue**: jobs/s, each call returning once its job is committed, from 1 task and "
        "from 64 tokio tasks of one process (ours: `noop(i).await` of a `#[retry(mode = "
        "\"durable\")]` function; apalis: `push` on the storage, the crate's default pool).\n"
        "- **Drain**: the jobs stored first, then worker processes (the bench binary again) "
        "started; from \"go\" until none is left unfinished (polled every 10 ms).\n"
        "- **Latency**: an idle worker in the bench's process, a job enqueued, the time from "
        "before the enqueue call to the start of its body; "
        f"{setup.get('latency_samples', '?')} samples 5 ms apart, median.\n"
    )
    if any(r.get("kind") == "skipped" for r in recs):
        md.append("PostgreSQL skipped in this run: `RETRY_BENCH_POSTGRES_URL` was not set.\n")
    work = peer_workloads(recs)
    rows = []
    for (store, _order, label, lower), by in sorted(
        work.items(), key=lambda kv: (kv[0][0] != "sqlite", kv[0][1])
    ):
        med = {c: median(xs) for c, xs in by.items()}
        ours = med.get("retry")
        peers = {c: v for c, v in med.items() if c != "retry"}
        best = (min if lower else max)(peers.items(), key=lambda kv: kv[1]) if peers else None
        row = [("SQLite" if store == "sqlite" else "PostgreSQL") + ", " + label]
        row.append(fmt_value(ours, lower) if ours is not None else "–")
        for p in PEERS:
            row.append(fmt_value(med[p], lower) if p in med else "–")
        if ours is not None and best and best[1] > 0 and ours > 0:
            r = best[1] / ours if lower else ours / best[1]
            row.append(f"{r:.2f}× ({best[0]})")
        else:
            row.append("–")
        row.append(
            "; ".join(
                f"{c}: " + ", ".join(f"{x:.1f}" if lower else f"{x:,.0f}" for x in xs)
                for c, xs in sorted(by.items())
            )
        )
        rows.append(row)
    md.append(
        table(
            ["workload", PEER_NAMES["retry"], "apalis-sqlite", "apalis-postgres",
             "ours vs best peer (> 1: ours ahead)", "rounds"],
            rows,
        )
    )
    md.append("")
    return md


def durable_goals_section(peers, durable, durable_pg):
    """The durable goals of issue 20, from benches/peers.rs, durable.rs and durable_pg.rs."""
    md = ["## Durable goals (issue 20)\n"]
    rows = []

    def goal(name, figure, target, measured, met, miss):
        rows.append([name, figure, target, measured, verdict(met, miss)])

    def not_measured(name, figure, target):
        rows.append([name, figure, target, "not measured", "–"])

    work = peer_workloads(peers or [])

    def med(store, label_start, who):
        for (s, _order, label, _lower), by in work.items():
            if s == store and label.startswith(label_start) and who in by:
                return median(by[who])
        return None

    def best_peer(store, label_start, lower=False):
        vals = [
            (median(xs), c)
            for (s, _order, label, _l), by in work.items()
            if s == store and label.startswith(label_start)
            for c, xs in by.items()
            if c != "retry"
        ]
        if not vals:
            return None
        return (min if lower else max)(vals)

    # SQLite drain.
    d = med("sqlite", "drain, 1 worker", "retry")
    if d is None and durable:
        drains = [r["per_s"] for r in durable if r.get("kind") == "drain"]
        d = median(drains) if drains else None
    if d is not None:
        goal("SQLite drain", "no-op jobs completed/s, 1 worker process",
             f"≥ {PEERS_SQLITE_DRAIN_PER_S:,.0f}/s", fmt_rate(d),
             d >= PEERS_SQLITE_DRAIN_PER_S, 100 * (1 - d / PEERS_SQLITE_DRAIN_PER_S))
    else:
        not_measured("SQLite drain", "no-op jobs completed/s, 1 worker process",
                     f"≥ {PEERS_SQLITE_DRAIN_PER_S:,.0f}/s")
    bp = best_peer("sqlite", "drain, 1 worker")
    if d is not None and bp:
        r = d / bp[0]
        goal("SQLite drain vs peers", f"ours ÷ best peer ({bp[1]})",
             f"≥ {PEERS_SQLITE_DRAIN_VS_PEER:.0f}×", f"{r:.2f}×",
             r >= PEERS_SQLITE_DRAIN_VS_PEER, 100 * (1 - r / PEERS_SQLITE_DRAIN_VS_PEER))
    else:
        not_measured("SQLite drain vs peers", "ours ÷ best peer", f"≥ {PEERS_SQLITE_DRAIN_VS_PEER:.0f}×")

    # PostgreSQL drain.
    d4 = med("postgres", "drain, 4 worker", "retry")
    if d4 is not None:
        goal("PostgreSQL drain", "no-op jobs completed/s, 4 worker processes",
             f"≥ {PEERS_PG_DRAIN_PER_S:,.0f}/s", fmt_rate(d4),
             d4 >= PEERS_PG_DRAIN_PER_S, 100 * (1 - d4 / PEERS_PG_DRAIN_PER_S))
    else:
        not_measured("PostgreSQL drain", "no-op jobs completed/s, 4 worker processes",
                     f"≥ {PEERS_PG_DRAIN_PER_S:,.0f}/s")
    for p in (1, 4):
        ours = med("postgres", f"drain, {p} worker", "retry")
        bp = best_peer("postgres", f"drain, {p} worker")
        name = f"PostgreSQL drain vs peers, {p} process{'es' if p != 1 else ''}"
        if ours is not None and bp:
            r = ours / bp[0]
            goal(name, f"ours ÷ best peer ({bp[1]})", f"≥ {PEERS_PG_DRAIN_VS_PEER}×",
                 f"{r:.2f}×", r >= PEERS_PG_DRAIN_VS_PEER, 100 * (1 - r / PEERS_PG_DRAIN_VS_PEER))
        else:
            not_measured(name, "ours ÷ best peer", f"≥ {PEERS_PG_DRAIN_VS_PEER}×")
    # Not falling with processes: durable_pg's 1, 2, 4 if there, else the peers bench's 1 and 4.
    by_workers = {}
    for r in durable_pg or []:
        if r.get("kind") == "throughput" and r.get("store") == "postgres":
            by_workers.setdefault(r["workers"], []).append(r["per_s"])
    if not by_workers:
        for p in (1, 4):
            v = med("postgres", f"drain, {p} worker", "retry")
            if v is not None:
                by_workers[p] = [v]
    counts = sorted(by_workers)
    if len(counts) >= 2:
        meds = [median(by_workers[c]) for c in counts]
        worst = min(b / a for a, b in zip(meds, meds[1:]))
        goal("PostgreSQL drain, more processes",
             "completions/s with " + " → ".join(str(c) for c in counts) + " processes",
             "not falling", " → ".join(fmt_rate(m) for m in meds),
             worst >= 1.0, 100 * (1 - worst))
    else:
        not_measured("PostgreSQL drain, more processes", "completions/s", "not falling")

    # PostgreSQL enqueue.
    e1 = med("postgres", "enqueue, 1 caller", "retry")
    e64 = med("postgres", "enqueue, 64 callers", "retry")
    if e1 and e64:
        r = e64 / e1
        goal("PostgreSQL enqueue, 64 callers", "calls/s ÷ 1 caller's",
             f"≥ {PEERS_PG_ENQUEUE_SCALE:.0f}×", f"{r:.1f}×",
             r >= PEERS_PG_ENQUEUE_SCALE, 100 * (1 - r / PEERS_PG_ENQUEUE_SCALE))
    else:
        not_measured("PostgreSQL enqueue, 64 callers", "calls/s ÷ 1 caller's",
                     f"≥ {PEERS_PG_ENQUEUE_SCALE:.0f}×")
    bp = best_peer("postgres", "enqueue, 1 caller")
    if e1 and bp:
        r = e1 / bp[0]
        goal("PostgreSQL enqueue, 1 caller, vs peers", f"ours ÷ best peer ({bp[1]})",
             "> 1×", f"{r:.2f}×", r > 1.0, 100 * (1 - r))
    else:
        not_measured("PostgreSQL enqueue, 1 caller, vs peers", "ours ÷ best peer", "> 1×")

    # Latency.
    for store, name in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        lat = med(store, "enqueue-to-first-attempt", "retry")
        if lat is not None:
            goal(f"{name} latency", "enqueue to first attempt, median",
                 f"< {PEERS_LATENCY_MS:.0f} ms", f"{lat:.1f} ms",
                 lat < PEERS_LATENCY_MS, 100 * (lat / PEERS_LATENCY_MS - 1))
        else:
            not_measured(f"{name} latency", "enqueue to first attempt, median",
                         f"< {PEERS_LATENCY_MS:.0f} ms")

    # Memory: whatever two store sizes benches/durable.rs measured, the largest ÷ the smallest.
    memory = sorted((r for r in durable or [] if r.get("kind") == "memory"), key=lambda r: r["n"])
    if len(memory) >= 2:
        small, large = memory[0], memory[-1]
        for label, key in (("resident growth (`VmRSS`)", "rss_growth_kib"),
                           ("peak resident (`VmHWM`)", "vm_hwm_kib")):
            if key not in small or key not in large:
                continue
            a, b = small[key], large[key]
            r = b / a if a > 0 else float("inf")
            goal(f"worker memory, {label}",
                 f"{large['n']:,} calls in the store ÷ {small['n']:,}",
                 f"≤ {PEERS_MEMORY_RATIO}×", f"{r:.2f}×",
                 r <= PEERS_MEMORY_RATIO, 100 * (r / PEERS_MEMORY_RATIO - 1))
    else:
        not_measured("worker memory", "1,000,000 calls in the store ÷ 10,000", f"≤ {PEERS_MEMORY_RATIO}×")

    md.append(
        "From `benches/peers.rs` (the table below), `benches/durable.rs` (memory) and "
        "`benches/durable_pg.rs` (worker processes 1, 2, 4), all of this run.\n"
    )
    md.append(table(["goal", "figure", "target", "measured", "verdict"], rows))
    md.append("")
    return md


# The targets of the enqueue variants: a unique enqueue at most 1.3× a plain one; enqueuing in
# the caller's transaction at most 1.2× a plain insert of one row in it; a waiter in another
# process told of a success within 20 ms (median).
UNIQUE_RATIO = 1.3
OUTBOX_RATIO = 1.2
WAIT_MEDIAN_MS = 20.0


def enqueue_variants_section(unique, outbox, wait):
    md = ["## Unique, transactional and waited-for calls\n"]
    rows = []

    def goal(name, figure, target, measured, met, miss):
        rows.append([name, figure, target, measured, verdict(met, miss)])

    for r in unique or []:
        store = "SQLite" if r["store"] == "sqlite" else "PostgreSQL"
        goal(f"unique enqueue, {store}, {r['callers']} caller{'s' if r['callers'] != 1 else ''}",
             f"per call: unique {r['unique_us']:.0f} µs ÷ plain {r['plain_us']:.0f} µs "
             f"(key already held: {r['held_us']:.0f} µs)",
             f"≤ {UNIQUE_RATIO}×", f"{r['ratio']:.2f}×", r["ratio"] <= UNIQUE_RATIO,
             100 * (r["ratio"] / UNIQUE_RATIO - 1))
    for r in outbox or []:
        store = "SQLite" if r["store"] == "sqlite" else "PostgreSQL"
        goal(f"enqueue in the caller's transaction, {store}",
             f"transaction: {r['enqueue_tx_us']:.0f} µs ÷ plain insert {r['plain_tx_us']:.0f} µs "
             f"(statement alone: {r['stmt_ratio']:.2f}×)",
             f"≤ {OUTBOX_RATIO}×", f"{r['tx_ratio']:.2f}×", r["tx_ratio"] <= OUTBOX_RATIO,
             100 * (r["tx_ratio"] / OUTBOX_RATIO - 1))
    for r in wait or []:
        if r.get("kind") != "wait_latency":
            continue
        goal("success to a waiter in another process, PostgreSQL",
             f"median of {r['calls']} calls (p90 {r['p90_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms)",
             f"< {WAIT_MEDIAN_MS:.0f} ms", f"{r['median_ms']:.1f} ms",
             r["median_ms"] < WAIT_MEDIAN_MS, 100 * (r["median_ms"] / WAIT_MEDIAN_MS - 1))
    if not rows:
        md.append("Not measured in this run (no `durable_unique.jsonl`, `outbox.jsonl` or "
                  "`durable_wait_pg.jsonl`).\n")
        return md
    md.append(
        "`benches/durable_unique.rs`: per store, 1 and 32 concurrent callers, rounds of plain "
        "`Store::enqueue(vec![call])` and `Store::enqueue_unique(call)` with a new key, "
        "interleaved, the median per-call time; \"key already held\": nothing is written. "
        "`benches/outbox.rs`: medians of transactions that insert one row of the program's own "
        "and, or not, enqueue a call in the same transaction. `benches/durable_wait_pg.rs`: a "
        "caller in another process waiting (`Store::wait_for`) for a call's success. SQLite: "
        "WAL, `synchronous = FULL`; PostgreSQL: the server of this run.\n"
    )
    md.append(table(["goal", "figure", "target", "measured", "verdict"], rows))
    md.append("")
    return md


def rtt_section(recs):
    """Runs with a 1 ms round trip to the store (benches/durable_rtt.rs), if it ran: one row
    per workload and link (1 ms, 0 ms through the same proxy, direct), the rounds' rates and
    the round trips per call with where they go."""
    if recs is None:
        return []
    md = ["## Durable calls with a 1 ms round trip to the store\n"]
    md.append(
        "`benches/durable_rtt.rs`: the workers and callers reach PostgreSQL through a delaying "
        "TCP proxy on loopback (a delay line, 0.5 ms each way, no throughput limit; `netem` is "
        "not available on this VM), which counts a round trip each time the client sends after "
        "it has received something, and labels it with the statement it carries. `1ms`: 1 ms "
        "added; `0ms`: the same proxy without delay; `direct`: no proxy. Calibration: a "
        "sequential `SELECT 1` is one round trip.\n"
    )
    setup = next((r for r in recs if r.get("kind") == "setup"), None)
    if setup:
        md.append(
            "Setup: "
            + ", ".join(f"`{k}` = {v}" for k, v in setup.items() if k != "kind")
            + ".\n"
        )
    skipped = [r for r in recs if r.get("kind") == "skipped"]
    runs = [r for r in recs if r.get("kind") not in ("setup", "skipped", "done")]
    if skipped and not runs:
        md.append(f"Skipped in this run: {skipped[0].get('reason', 'no reason given')}.\n")
        return md
    calib = {}
    for r in runs:
        if r.get("kind") == "calibration":
            calib.setdefault(r.get("link"), []).append(r.get("ms_per_query"))
    if calib:
        md.append(
            "Calibration, ms per sequential `SELECT 1`: "
            + "; ".join(
                f"`{link}` " + ", ".join(f"{v:.2f}" for v in vals if v is not None)
                for link, vals in sorted(calib.items())
            )
            + ".\n"
        )
    groups = {}
    order = []
    for r in runs:
        kind = r.get("kind")
        if kind in ("calibration",):
            continue
        who = (
            f"{r['workers']} worker{'s' if r['workers'] != 1 else ''}"
            if "workers" in r
            else f"{r['callers']} caller{'s' if r['callers'] != 1 else ''}"
            if "callers" in r
            else f"{r.get('calls', '?')} calls of {r.get('attempt_ms', '?')} ms, lease "
            f"{r.get('lease_ms', '?')} ms"
            if kind == "renewal"
            else f"{r.get('workers', '')}"
        )
        if kind == "idle":
            who = f"{round(r.get('round_trips_per_s', 0) / max(r.get('round_trips_per_s_per_worker') or 1, 1e-9))} worker(s)"
        key = (kind, who, r.get("link"))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(r)
    rows = []
    for key in order:
        kind, who, link = key
        rs = groups[key]
        rates = [r["per_s"] for r in rs if r.get("per_s") is not None]
        rate = f"{statistics.median(rates):,.0f}/s ({', '.join(f'{v:,.0f}' for v in rates)})" if rates else "–"
        if kind == "idle":
            rtc = [r.get("round_trips_per_s_per_worker") for r in rs]
            trips = "per s per worker: " + ", ".join(f"{v:.2f}" for v in rtc if v is not None)
        else:
            rtc = [r.get("round_trips_per_call") for r in rs if r.get("round_trips_per_call") is not None]
            trips = ", ".join(f"{v:.2f}" for v in rtc) if rtc else "–"
        paths = {}
        for r in rs:
            by = r.get("round_trips_per_call_by_path") or r.get("flights_by_path") or {}
            for k, v in by.items():
                paths.setdefault(k, []).append(v)
        top = sorted(paths.items(), key=lambda kv: -statistics.median(kv[1]))[:3]
        where = ", ".join(f"{k} {statistics.median(v):.3g}" for k, v in top if statistics.median(v) >= 0.001) or "–"
        if kind == "idle" and where != "–":
            where = f"in {rs[0].get('secs', 10):.0f} s: {where}"
        rows.append([kind, who, f"`{link}`", rate, trips, where])
    md.append(
        table(
            ["workload", "who", "link", "per s, median (rounds)", "round trips per call", "where (median per call)"],
            rows,
        )
    )
    md.append("")
    return md


def machine_rows(machine):
    """Date, commit and load of the run, or of each part when the parts ran apart
    (`run.sh inline`, `run.sh durable`)."""
    parts = machine.get("parts", {})
    if len(parts) <= 1:
        return [
            ["date", machine["date"]],
            ["commit", f"`{machine['commit']}`"],
            ["load average at start", machine["loadavg"]],
        ]
    rows = []
    for name in sorted(parts):
        p = parts[name]
        rows.append(
            [
                f"{name} parts (`run.sh {name}`)",
                f"{p['date']}, commit `{p['commit']}`, load average at start {p['loadavg']}",
            ]
        )
    return rows


def main():
    crit_dir, results_dir, out = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
    crit = load_criterion(crit_dir)
    machine = json.loads((results_dir / "machine.json").read_text())
    alloc_path = results_dir / "alloc.jsonl"
    alloc = {}
    if alloc_path.exists():
        for line in alloc_path.read_text().splitlines():
            if line.startswith("alloc-result: "):
                rec = json.loads(line[len("alloc-result: ") :])
                alloc[rec["who"]] = rec
    compile_path = results_dir / "compile.json"
    comp = json.loads(compile_path.read_text()) if compile_path.exists() else None

    goals = Goals()
    goals.add(
        "first-attempt success, sync",
        "`sync/success`: `#[retry]` ÷ hand loop",
        crit_ratio(crit, "sync/success/retry", "sync/success/hand"),
        1.05,
    )
    for clock in ("real", "paused"):
        goals.add(
            f"first-attempt success, async ({clock} clock)",
            f"`async-{clock}/success`: `#[retry]` ÷ hand loop",
            crit_ratio(crit, f"async-{clock}/success/retry", f"async-{clock}/success/hand"),
            1.0,
        )
    for k in (1, 4):
        goals.add(
            f"zero-delay retries, sync, k = {k}",
            f"`sync/k{k}-zero`: `#[retry]` ÷ hand loop",
            crit_ratio(crit, f"sync/k{k}-zero/retry", f"sync/k{k}-zero/hand"),
            1.10,
        )
    for k in (1, 4):
        goals.add(
            f"zero-delay retries, async paused clock, k = {k} (well under 0.5×)",
            f"`async-paused/k{k}-zero`: `#[retry]` ÷ hand loop that always sleeps",
            crit_ratio(crit, f"async-paused/k{k}-zero/retry", f"async-paused/k{k}-zero/hand"),
            0.5,
            below=True,
        )
    if comp:
        for mode in ("full", "incremental"):
            m = comp["modes"][mode]
            r = m["retry"]["median_s"] / m["hand"]["median_s"]
            goals.add(
                f"compile time, {comp['functions']} functions ({mode})",
                "`cargo build` of the crate: `#[retry]` ÷ hand loops",
                (r,),
                1.3,
            )
    else:
        goals.add("compile time", "`cargo build`", None, 1.3)

    md = []
    md.append("# Benchmarks\n")
    md.append(
        "Written by `bash benches/run.sh` (do not edit by hand; run it again). Every figure is "
        "a median; the ratio in parentheses is to the hand-written loop measured in the same "
        "run (lower is faster).\n"
    )
    md.append(
        table(
            ["", ""],
            machine_rows(machine)
            + [
                ["machine", f"{machine['nproc']} cores, {machine['cpu']}"],
                ["rustc", f"`{machine['rustc']}`"],
                [
                    "criterion",
                    f"`{machine['criterion_args']}`, bench profile (release), no tracing "
                    "subscriber",
                ],
            ],
        )
    )
    md.append("")
    md.append(
        "The machine is shared (two cores, other builds running), so a figure can move by a "
        "few percent between runs; the 95% confidence intervals of the criterion medians are "
        "in the goal table, as the range of ratios they allow.\n"
    )

    md.append("## Goals\n")
    md.append(goals.render())
    md.append("")
    floors = [
        (k, crit_ratio(crit, f"async-paused/k{k}-zero/hand-skip0", f"async-paused/k{k}-zero/hand"))
        for k in (1, 4)
    ]
    if all(r for _, r in floors):
        md.append(
            "For scale: the hand loop that skips zero waits, which does no more than the "
            "operation and the loop, reaches "
            + " and ".join(f"{r[0]:.2f}× (k = {k})" for k, r in floors)
            + " of the always-sleeping one on the paused clock; the rest of the call "
            "(`block_on`, the first attempt) is the same for every contestant.\n"
        )

    md.append("## What is measured\n")
    md.append(
        "- The operation is `#[inline(never)] fn op() -> Result<u64, Transient>` (and an "
        "`async fn` around it), which fails as many times as the scenario says and then "
        "returns `Ok(black_box(42))`. Every contestant retries that same function under the "
        "same policy: at most 5 retries; `zero` = fixed 0 ms, `fixed` = fixed 1 ms, `exp` = "
        "1, 2, 4, 8 ms (factor 2, no jitter). `success` = the first attempt succeeds; `kN-…` "
        "= N failures, then a success.\n"
        "- Contestants: a direct call of `op`; the hand-written loop (`loop { match op() … "
        "sleep(wait) }`, the policy as constants); `#[retry(max = 5, backoff = …, delay = …)]`; "
        "`backon` (`ConstantBuilder`/`ExponentialBuilder`, `.retry(..).call()` or `.await`); "
        "`retry` (`retry::retry(delays.take(5), op)`, sync only); `tryhard` "
        "(`retry_fn(op_async).retries(5)…`, async only); `tokio-retry2` "
        "(`Retry::spawn(delays.take(5), ..)` with `map_transient_err`, async only); `backoff` "
        "(`backoff::retry` with `Constant` or `ExponentialBackoff` without randomization or "
        "time limit, behind a 5-wait adapter, sync only); `tokio-retry` "
        "(`Retry::start(delays.take(5), op_async)`, its `FixedInterval` or the doubling waits "
        "as an iterator, async only).\n"
        "- Sync waits are `std::thread::sleep` (a zero one is a no-op in `std`). Async waits "
        "are `tokio::time::sleep`. The async `hand loop` always sleeps, even for a zero "
        "wait, which registers a timer; `hand loop, skips 0` does not. `#[retry]` skips zero "
        "waits; backon, tryhard, tokio-retry2 and tokio-retry always sleep.\n"
        "- Async: one current-thread runtime per clock, made once, and one `rt.block_on` per "
        "iteration for every contestant alike. `async-real`: the real clock, where a wait "
        "lasts at least until tokio's next 1 ms timer tick. `async-paused`: "
        "`start_paused(true)`, where the runtime advances the clock instead of waiting, so "
        "only the per-attempt machinery is left.\n"
        "- Before measuring, each contestant is run once and checked to succeed after "
        "exactly the scenario's failures.\n"
        "- tokio is built with `test-util` for every contestant (the paused clock needs it, "
        "and `tryhard` turns it on anyway), so reading tokio's clock checks for a paused "
        "one. No `tracing` subscriber is installed: `#[retry]`'s spans and events are "
        "disabled call sites, as in a program that does not collect them.\n"
    )

    md.append("## Sync\n")
    md.append(inline_table(crit, "sync", SYNC))
    md.append("")
    md.append("## Async, real clock\n")
    md.append(inline_table(crit, "async-real", ASYNC))
    md.append("")
    md.append("## Async, paused clock\n")
    md.append(inline_table(crit, "async-paused", ASYNC))
    md.append("")

    md.append("## One zero-delay retry (derived)\n")
    md.append(
        "(median of `k4-zero` − median of `success`) ÷ 4, for each contestant: what one "
        "more failed attempt and zero wait cost, without the call's fixed part. Ratio to the "
        "hand loop (the always-sleeping one for async).\n"
    )
    per_retry = [
        ("hand", "hand loop"),
        ("hand-skip0", "hand loop, skips 0"),
        ("retry", "`#[retry]`"),
        ("backon", "backon"),
        ("retry-crate", "retry"),
        ("tryhard", "tryhard"),
        ("tokio-retry2", "tokio-retry2"),
        ("backoff", "backoff"),
        ("tokio-retry", "tokio-retry"),
    ]
    names = [c for c, _ in per_retry]
    md.append(
        table(
            ["flavour"] + [h for _, h in per_retry],
            per_retry_table(crit, [("sync", names), ("async-paused", names)]),
        )
    )
    md.append("")

    md.append("## Background mode\n")
    bg = {
        k: crit.get(f"background/{k}")
        for k in ("spawn/hand", "spawn/retry", "complete/hand", "complete/retry")
    }
    if all(bg.values()) and alloc:
        md.append(
            f"{BACKGROUND_N} calls of `#[retry(max = 3, backoff = \"fixed\", delay = \"1ms\", "
            "mode = \"background\")] async fn`, each failing twice, against the same loop in "
            "`tokio::spawn(async move { … })`, started from one task on a multi-thread "
            "runtime (one worker per core). Spawn = the time to start all calls, per call; "
            "completion = from the first start to the last outcome awaited. Heap bytes: "
            "`benches/background_alloc.rs`, a counting global allocator, peak live bytes ÷ "
            "N with all N calls alive (started from one task on a current-thread runtime, "
            "so none finishes before the last starts); the arguments and the vector of "
            "handles are made before and not counted.\n"
        )
        n = BACKGROUND_N
        rows = [
            [
                "spawn time per call",
                fmt_time(bg["spawn/hand"][0] / n),
                fmt_time(bg["spawn/retry"][0] / n),
                fmt_ratio(ratio(bg["spawn/retry"], bg["spawn/hand"])),
            ],
            [
                f"wall time to completion, {n} calls",
                fmt_time(bg["complete/hand"][0]),
                fmt_time(bg["complete/retry"][0]),
                fmt_ratio(ratio(bg["complete/retry"], bg["complete/hand"])),
            ],
        ]
        h, r = alloc["hand"], alloc["retry"]
        rows.append(
            [
                "heap bytes per call (peak live ÷ N)",
                f"{h['peak_bytes_per_call']:.0f} B",
                f"{r['peak_bytes_per_call']:.0f} B",
                f"{r['peak_bytes_per_call'] / h['peak_bytes_per_call']:.2f}×",
            ]
        )
        rows.append(
            [
                "allocations per call",
                f"{h['allocs_per_call']:.2f}",
                f"{r['allocs_per_call']:.2f}",
                f"{r['allocs_per_call'] / h['allocs_per_call']:.2f}×",
            ]
        )
        rows.append(
            [
                "handle size (`size_of`)",
                f"{h['handle_bytes']} B (`JoinHandle`)",
                f"{r['handle_bytes']} B (`RetryHandle`)",
                f"{r['handle_bytes'] / h['handle_bytes']:.0f}×",
            ]
        )
        md.append(table(["", "hand `tokio::spawn` loop", "`#[retry]` background", "ratio"], rows))
    else:
        md.append(
            "<!-- PLACEHOLDER: background mode -->\n"
            "**Placeholder.** Not measured in this run: `retry_runtime::RetryHandle` was not "
            "found, so `benches/run.sh` skipped the background benchmarks (spawn time per call "
            "and wall time to completion against a hand-written `tokio::spawn` retry loop, "
            "heap bytes per call). They run as soon as the background mode exists."
        )
    md.append("")

    md.extend(durable_section(load_durable(results_dir / "durable.jsonl")))
    durable = load_durable(results_dir / "durable.jsonl")
    durable_pg = load_durable_pg(results_dir / "durable_pg.jsonl")
    peers = load_jsonl(results_dir / "peers.jsonl", "peers-result: ")
    md.extend(durable_goals_section(peers, durable, durable_pg))
    md.extend(peers_section(peers))
    md.extend(durable_pg_section(durable_pg))
    md.extend(
        enqueue_variants_section(
            load_jsonl(results_dir / "durable_unique.jsonl", "durable-unique-result: "),
            load_jsonl(results_dir / "outbox.jsonl", "outbox-result: "),
            load_jsonl(results_dir / "durable_wait_pg.jsonl", "durable-wait-pg-result: "),
        )
    )
    md.extend(rtt_section(load_jsonl(results_dir / "durable_rtt.jsonl", "durable-rtt-result: ")))

    md.append("## Compile time\n")
    if comp:
        md.append(
            f"A generated binary crate with {comp['functions']} functions (half sync, half "
            "async; `exp`, `fixed` and `linear` policies; four error types; one by-value "
            "argument; `main` calls each once), as `#[retry]` functions and as hand-written "
            "loops that do the same waits (without logging, spans or correlation IDs). Both "
            "depend on `retry-runtime` by path and on tokio, built once beforehand; each "
            "measurement touches `src/main.rs` and times `cargo build` (debug), which then "
            f"rebuilds that crate only. Median of {comp['runs']} runs, interleaved. `full`: "
            "`CARGO_INCREMENTAL=0`, the whole crate compiled again; `incremental`: cargo's "
            "default for debug builds, an unchanged file, so most of the work comes from the "
            "incremental cache and macro expansion is what remains.\n"
        )
        rows = []
        for mode in ("full", "incremental"):
            m = comp["modes"][mode]
            h, r = m["hand"], m["retry"]
            rows.append(
                [
                    mode,
                    f"{h['median_s']:.2f} s",
                    f"{r['median_s']:.2f} s",
                    f"{r['median_s'] / h['median_s']:.2f}×",
                    ", ".join(f"{x:.2f}" for x in h["runs_s"])
                    + " / "
                    + ", ".join(f"{x:.2f}" for x in r["runs_s"]),
                ]
            )
        md.append(table(["build", "hand loops", "`#[retry]`", "ratio", "runs (s), hand / retry"], rows))
    else:
        md.append("Not measured in this run.")
    md.append("")
    pathlib.Path(out).write_text("\n".join(md))


if __name__ == "__main__":
    main()
