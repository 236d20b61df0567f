//! The probe of the executor tests (background, hand-off, shutdown, no runtime): it scripts
//! the attempts of one call and records what they saw. Each test binary that needs it includes
//! it with `#[path = "common/probe.rs"] mod probe;`.
#![allow(dead_code)] // each binary uses what it needs

use retry_runtime::{current_cid, CorrelationId, Report};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What an attempt does once past its gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Ok,
    /// A retryable error, `"transient {n}"`.
    Fail,
    /// An error `when` rejects, `"fatal {n}"`.
    Fatal,
    Panic,
}

/// Scripts the attempts of one call and records what they saw.
#[derive(Default)]
pub struct Probe {
    /// The step of attempt `n` is `plan[n - 1]`; the last one repeats.
    plan: Vec<Step>,
    /// How long each attempt takes, for the functions that sleep it (`hold()`).
    hold: Duration,
    /// Each attempt waits for `open()` before its step.
    gated: bool,
    gate: Notify,
    sync_gate: (Mutex<u32>, Condvar),
    /// Attempts started.
    started: AtomicU32,
    /// Attempts that reached their step (past the gate and the hold): the code after the
    /// body's await points.
    finished: AtomicU32,
    /// tokio's clock at the start of each attempt (the real clock outside a runtime).
    times: Mutex<Vec<Instant>>,
    /// `current_cid()` in each attempt.
    cids: Mutex<Vec<Option<CorrelationId>>>,
    /// The thread each attempt ran on.
    threads: Mutex<Vec<ThreadId>>,
    /// Whether each attempt ran in the caller, for the attempts started with `begin_in`.
    in_caller: Mutex<Vec<bool>>,
    /// The reports `on_done` got.
    done: Mutex<Vec<Report<String>>>,
}

impl Probe {
    pub fn new(plan: &[Step]) -> Arc<Self> {
        Arc::new(Self {
            plan: plan.to_vec(),
            ..Self::default()
        })
    }

    /// Each attempt waits for `open()` before its step.
    pub fn gated(plan: &[Step]) -> Arc<Self> {
        Arc::new(Self {
            plan: plan.to_vec(),
            gated: true,
            ..Self::default()
        })
    }

    /// Each attempt takes `hold` (in the functions that sleep `hold()`).
    pub fn holding(plan: &[Step], hold: Duration) -> Arc<Self> {
        Arc::new(Self {
            plan: plan.to_vec(),
            hold,
            ..Self::default()
        })
    }

    /// Fails the first `fail` attempts, then succeeds.
    pub fn failing(fail: usize) -> Arc<Self> {
        let mut plan = vec![Step::Fail; fail];
        plan.push(Step::Ok);
        Self::new(&plan)
    }

    /// Records the start of an attempt; its number.
    pub fn begin(&self) -> u32 {
        self.times.lock().unwrap().push(Instant::now());
        self.cids.lock().unwrap().push(current_cid());
        self.threads.lock().unwrap().push(thread::current().id());
        self.started.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// `begin`, noting whether the attempt runs in the caller.
    pub fn begin_in(&self, in_caller: bool) -> u32 {
        self.in_caller.lock().unwrap().push(in_caller);
        self.begin()
    }

    /// A whole sync attempt with no gate: `begin`, then the step.
    pub fn attempt(&self) -> Result<u32, String> {
        let n = self.begin();
        self.outcome(n)
    }

    pub fn hold(&self) -> Duration {
        self.hold
    }

    pub async fn pass_async(&self) {
        if self.gated {
            self.gate.notified().await;
        }
    }

    pub fn pass_sync(&self) {
        if self.gated {
            // Bounded, so that a failed test does not hang in the runtime's drop (which
            // waits for the blocking pool).
            let (permits, cv) = &self.sync_gate;
            let (mut p, _) = cv
                .wait_timeout_while(permits.lock().unwrap(), Duration::from_secs(30), |p| {
                    *p == 0
                })
                .unwrap();
            *p = p.saturating_sub(1);
        }
    }

    /// Lets the (next) gated attempt through.
    pub fn open(&self) {
        self.gate.notify_one();
        *self.sync_gate.0.lock().unwrap() += 1;
        self.sync_gate.1.notify_all();
    }

    /// The step of attempt `n`: `Ok(n)`, `"transient {n}"`, `"fatal {n}"` or a panic.
    pub fn outcome(&self, n: u32) -> Result<u32, String> {
        self.finished.fetch_add(1, Ordering::SeqCst);
        let i = usize::try_from(n - 1).unwrap().min(self.plan.len() - 1);
        match self.plan[i] {
            Step::Ok => Ok(n),
            Step::Fail => Err(format!("transient {n}")),
            Step::Fatal => Err(format!("fatal {n}")),
            Step::Panic => panic!("attempt {n} panics"),
        }
    }

    pub fn on_done(&self, r: &Report<String>) {
        self.done.lock().unwrap().push(r.clone());
    }

    pub fn started(&self) -> u32 {
        self.started.load(Ordering::SeqCst)
    }

    pub fn finished(&self) -> u32 {
        self.finished.load(Ordering::SeqCst)
    }

    /// The gaps between the starts of consecutive attempts.
    pub fn gaps(&self) -> Vec<Duration> {
        let t = self.times.lock().unwrap();
        t.windows(2).map(|w| w[1] - w[0]).collect()
    }

    pub fn threads(&self) -> Vec<ThreadId> {
        self.threads.lock().unwrap().clone()
    }

    pub fn in_caller(&self) -> Vec<bool> {
        self.in_caller.lock().unwrap().clone()
    }

    /// The one cid every attempt saw.
    pub fn cid(&self) -> CorrelationId {
        let cids = self.cids.lock().unwrap();
        let first = cids[0].expect("current_cid() inside the body");
        assert!(cids.iter().all(|c| *c == Some(first)), "{cids:?}");
        first
    }

    /// Every attempt saw `cid` as its `current_cid()`.
    pub fn assert_cids(&self, cid: CorrelationId) {
        let cids = self.cids.lock().unwrap();
        assert!(!cids.is_empty());
        assert!(
            cids.iter().all(|c| *c == Some(cid)),
            "every attempt sees the handle's cid {cid}: {cids:?}"
        );
    }

    /// The reports `on_done` got.
    pub fn done(&self) -> Vec<Report<String>> {
        self.done.lock().unwrap().clone()
    }

    /// The one report `on_done` got (it must have been called exactly once).
    pub fn done_once(&self) -> Report<String> {
        let d = self.done.lock().unwrap();
        assert_eq!(d.len(), 1, "on_done is called exactly once per call: {d:?}");
        d[0].clone()
    }
}
