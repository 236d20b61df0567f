//! The driver of the instruction counts in `benches/why.md`: runs one contestant `n` times,
//! so that `valgrind --tool=callgrind` can count the instructions of a call (the difference
//! between two values of `n`, divided by their difference). Not a criterion benchmark.
//!
//!     cargo bench -p retry-benches --bench icount --no-run
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null <bench binary> retry k1-zero 10000
//!
//! `bash benches/icount.sh` runs every contestant and scenario and prints the table.

// The driver uses the operation only, not the scenarios and harness settings.
#[allow(dead_code)]
mod inline_common;

use core::time::Duration;
use std::hint::black_box;

use inline_common::{arm, op, Transient, MAX_RETRIES};
use retry_runtime::retry;

/// The hand-written loop, the policy as constants: zero first wait, doubled if `EXP`.
#[inline(never)]
fn hand<const EXP: bool>() -> Result<u64, Transient> {
    let mut retries = 0;
    let mut wait = Duration::ZERO;
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if retries == MAX_RETRIES => return Err(e),
            Err(_) => {
                retries += 1;
                std::thread::sleep(wait);
                if EXP {
                    wait *= 2;
                }
            }
        }
    }
}

#[inline(never)]
#[retry(max = 5, backoff = "fixed", delay = "0ms")]
fn retry_zero() -> Result<u64, Transient> {
    op()
}

#[inline(never)]
#[retry(max = 5, backoff = "exp", factor = 2, delay = "0ms")]
fn retry_exp0() -> Result<u64, Transient> {
    op()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (who, scenario, n) = match args.as_slice() {
        [_, who, scenario, n, ..] => (who.as_str(), scenario.as_str(), n.parse::<u32>()),
        // `cargo bench` runs every bench target with `--bench`: nothing to do here.
        _ => return,
    };
    let n = n.expect("a number of calls");
    let (k, exp) = match scenario {
        "success" => (0, false),
        "k1-zero" => (1, false),
        "k4-zero" => (4, false),
        "k4-exp0" => (4, true),
        other => panic!("unknown scenario {other}"),
    };
    let f: fn() -> Result<u64, Transient> = match (who, exp) {
        ("hand", false) => hand::<false>,
        ("hand", true) => hand::<true>,
        ("retry", false) => retry_zero,
        ("retry", true) => retry_exp0,
        _ => panic!("unknown contestant {who}"),
    };
    for _ in 0..n {
        arm(k);
        assert!(black_box(f()).is_ok());
    }
}
