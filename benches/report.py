#!/usr/bin/env python3
"""Writes BENCHMARKS.md from one run of benches/run.sh.

Usage: report.py CRITERION_DIR RESULTS_DIR OUT_MD

Reads CRITERION_DIR/**/new/{benchmark,estimates}.json (the median and its 95% confidence
interval), RESULTS_DIR/alloc.jsonl (benches/background_alloc.rs), RESULTS_DIR/compile.json
(benches/compile_time.py) and RESULTS_DIR/machine.json (benches/run.sh). Every ratio is to the
hand-written loop measured in the same run.
"""

import json
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
            [
                ["date", machine["date"]],
                ["commit", f"`{machine['commit']}`"],
                ["machine", f"{machine['nproc']} cores, {machine['cpu']}"],
                ["load average at start", machine["loadavg"]],
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
