//! Policies tuned at run time: `overrides::set`, `clear`, `get`, the override file, and the
//! kill switch (`max = 0`, `Reason::Disabled`). Overrides are process-wide, so the tests
//! take turns (`serial`).
use retry_runtime::overrides::{self, OverrideError};
use retry_runtime::{retry, testing, Backoff, Policy, Reason, Status};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    overrides::clear_all();
    guard
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

static PUSH_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[retry(max = 5, delay = "0ms", name = "billing::push_invoice")]
fn push_invoice() -> Result<(), &'static str> {
    PUSH_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    Err("down")
}

fn push_attempts() -> u32 {
    PUSH_ATTEMPTS.store(0, Ordering::Relaxed);
    assert_eq!(push_invoice(), Err("down"));
    PUSH_ATTEMPTS.load(Ordering::Relaxed)
}

#[test]
fn set_get_and_clear() {
    let _s = serial();
    assert!(overrides::get("billing::push_invoice").is_none());
    assert_eq!(push_attempts(), 6);

    overrides::set("billing::push_invoice", Policy::new().max_retries(Some(1)));
    let o = overrides::get("billing::push_invoice").expect("set");
    assert_eq!(o.max_retries, Some(Some(1)));
    assert_eq!(push_attempts(), 2);
    // Another name is not affected.
    assert!(overrides::get("billing::push").is_none());

    overrides::clear("billing::push_invoice");
    assert!(overrides::get("billing::push_invoice").is_none());
    assert_eq!(push_attempts(), 6);
}

#[test]
fn the_kill_switch_makes_the_first_failure_final() {
    let _s = serial();
    let disabled = Policy::new().max_retries(Some(0));
    overrides::set("billing::push_invoice", disabled);
    assert_eq!(push_attempts(), 1);
}

#[retry(max = 5, backoff = "linear", delay = "1s", name = "billing::partial")]
fn partial() -> Result<(), &'static str> {
    Err("down")
}

#[test]
fn a_partial_override_keeps_the_attributes_other_values() {
    let _s = serial();
    let n = overrides::load_str(
        r#"
        ["billing::partial"]
        max = 2
        "#,
    )
    .expect("a valid file");
    assert_eq!(n, 1);
    let sleeps = testing::instant_sleeps();
    assert!(partial().is_err());
    // Two retries, still linear from 1 s.
    assert_eq!(sleeps.delays(), [secs(1), secs(2)]);
    drop(sleeps);

    overrides::load_str("[\"billing::partial\"]\ndelay = \"3s\"\nbackoff = \"exp\"\n").unwrap();
    let sleeps = testing::instant_sleeps();
    assert!(partial().is_err());
    // Five retries (the attribute's), exponential by the default factor from 3 s.
    assert_eq!(
        sleeps.delays(),
        [3, 6, 12, 24, 48].map(secs),
        "max from the attribute, delay and backoff from the file"
    );
    let o = overrides::get("billing::partial").unwrap();
    assert_eq!(o.max_retries, None, "the file did not say");
    assert_eq!(o.backoff, Some(Backoff::Exponential { factor: 2.0 }));
}

#[retry(max = 1, delay = "0ms", name = "billing::refund")]
fn refund() -> Result<(), &'static str> {
    Err("down")
}

#[retry(max = 1, delay = "0ms", name = "a")]
fn a() -> Result<(), &'static str> {
    Err("down")
}

struct Ledger;

impl Ledger {
    #[retry(max = 1, delay = "0ms")]
    fn post(&self) -> Result<(), &'static str> {
        Err("down")
    }
}

#[test]
fn an_override_of_an_unknown_function_is_an_error_with_the_closest_name() {
    let _s = serial();
    overrides::set("billing::push_invoice", Policy::new().max_retries(Some(1)));
    // The kill switch, misspelled: refused, not silently ignored.
    let err = overrides::load_str("\n[\"billing::push_invoce\"]\nmax = 0\n").unwrap_err();
    assert_eq!(err.line(), Some(2), "{err}");
    assert_eq!(
        err.to_string(),
        "line 2: no `#[retry]` function of this program is named `billing::push_invoce`; \
         did you mean `billing::push_invoice`?"
    );
    // Nothing close: the rule instead.
    let err = overrides::load_str("[\"shipping::label\"]\nmax = 0\n").unwrap_err();
    assert!(err.to_string().contains("as it reports itself"), "{err}");
    // A method named by default is known under its type's name.
    assert!(overrides::is_known("overrides::Ledger::post"));
    assert!(!overrides::is_known("overrides::Ledger::pots"));
    let err = overrides::load_str("[\"overrides::Ledger::pots\"]\nmax = 0\n").unwrap_err();
    assert!(
        err.to_string()
            .ends_with("did you mean `overrides::Ledger::post`?"),
        "{err}"
    );
    assert_eq!(
        overrides::load_str("[\"overrides::Ledger::post\"]\nmax = 0\n").unwrap(),
        1
    );
    assert_eq!(Ledger.post(), Err("down"));
    overrides::clear_all();
    // The functions are used, so the test says they exist.
    assert!(refund().is_err() && a().is_err());
}

#[test]
fn a_key_outside_a_section_gets_a_hint() {
    let _s = serial();
    let err = overrides::load_str("max = 0\n\n[\"billing::refund\"]\nmax = 1\n").unwrap_err();
    assert_eq!(err.line(), Some(1), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("`max = 0` is outside a section"), "{shown}");
    assert!(
        shown.contains("[\"billing::push_invoice\"]\nmax = 0"),
        "{shown}"
    );
    assert!(!shown.contains("invalid type"), "{shown}");
}

#[test]
fn a_bad_duration_lists_every_unit_from_the_one_list() {
    let _s = serial();
    let err = overrides::load_str("[\"a\"]\ndelay = \"5 parsecs\"\n").unwrap_err();
    // `retry_duration::HOW`, the one list the attribute's messages use too.
    assert!(
        err.to_string()
            .contains("(ns, us, ms, s, m, h, d, w) with no spaces"),
        "{err}"
    );
    assert_eq!(
        overrides::load_str("[\"a\"]\nbudget = \"1w\"\n").unwrap(),
        1,
        "every listed unit is accepted"
    );
    overrides::clear_all();
}

#[test]
fn a_full_file_with_every_key_parses() {
    let _s = serial();
    let n = overrides::load_str(
        r#"
        # Operator's overrides.
        ["billing::push_invoice"]
        max = 10            # or "forever"; 0 = kill switch
        backoff = "exp"     # fixed | linear | exp
        delay = "200ms"
        factor = 3.0
        max_delay = "30s"
        jitter = "full"
        budget = "5m"

        ["billing::refund"]
        max = "forever"
        "#,
    )
    .unwrap();
    assert_eq!(n, 2);
    let p = overrides::get("billing::push_invoice")
        .unwrap()
        .apply(&Policy::new());
    assert_eq!(p.max_retries, Some(10));
    assert_eq!(p.backoff, Backoff::Exponential { factor: 3.0 });
    assert_eq!(p.delay, Duration::from_millis(200));
    assert_eq!(p.max_delay, Some(secs(30)));
    assert_eq!(p.jitter, retry_runtime::Jitter::Full);
    assert_eq!(p.budget, Some(secs(300)));
    let refund = overrides::get("billing::refund").unwrap();
    assert_eq!(refund.max_retries, Some(None));
}

#[test]
fn a_bad_file_is_an_error_naming_the_line_and_changes_nothing() {
    let _s = serial();
    overrides::set("billing::push_invoice", Policy::new().max_retries(Some(1)));
    let cases: [(&str, usize, &str); 5] = [
        ("[\"a\"]\nmax = 1\ndelay = \"5 parsecs\"\n", 3, "delay"),
        ("[\"a\"]\n\nbackof = \"exp\"\n", 3, "unknown key `backof`"),
        ("[\"a\"]\nmax = -1\n", 2, "`max` is -1"),
        ("[\"a\"]\njitter = \"lots\"\n", 2, "unknown jitter"),
        ("[\"a\"]\nmax = 3\nfactor = = 2\n", 3, ""),
    ];
    for (text, line, says) in cases {
        let err = overrides::load_str(text).expect_err(text);
        assert_eq!(err.line(), Some(line), "{text:?}: {err}");
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("line {line}: ")), "{shown}");
        assert!(shown.contains(says), "{shown}");
    }
    // The override set before is still the one in force.
    assert_eq!(
        overrides::get("billing::push_invoice").unwrap().max_retries,
        Some(Some(1))
    );
    assert!(overrides::get("a").is_none());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("retry.toml");
    std::fs::write(&path, "[\"a\"]\nmax = 2\nbudget = 5\n").unwrap();
    let err = overrides::load_file(&path).unwrap_err();
    assert!(
        matches!(err, OverrideError::Invalid { line: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("retry.toml, line 3: "), "{err}");
    let missing = overrides::load_file(dir.path().join("none.toml")).unwrap_err();
    assert!(matches!(missing, OverrideError::Io { .. }), "{missing}");

    std::fs::write(&path, "[\"a\"]\nmax = 2\n").unwrap();
    assert_eq!(overrides::load_file(&path).unwrap(), 1);
    // A file replaces every override before it.
    assert!(overrides::get("billing::push_invoice").is_none());
    assert_eq!(overrides::get("a").unwrap().max_retries, Some(Some(2)));
}

static WAITING_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[retry(
    max = 5,
    delay = "10s",
    mode = "background",
    name = "billing::sync_ledger"
)]
async fn sync_ledger() -> Result<(), String> {
    WAITING_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    Err("down".to_string())
}

#[test]
fn the_kill_switch_reaches_a_call_that_is_already_waiting() {
    let _s = serial();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let handle = sync_ledger();
        tokio::time::sleep(secs(1)).await;
        assert!(
            matches!(
                handle.status(),
                Status::Waiting {
                    next_attempt: 2,
                    ..
                }
            ),
            "{:?}",
            handle.status()
        );
        overrides::set("billing::sync_ledger", Policy::new().max_retries(Some(0)));
        let failure = handle.await.expect_err("the call fails");
        assert_eq!(failure.reason(), Reason::Disabled);
        assert_eq!(failure.report.reason.to_string(), "retries disabled");
        // The attempt it was waiting for ran; its failure was final.
        assert_eq!(failure.report.attempts, 2);
        assert_eq!(WAITING_ATTEMPTS.load(Ordering::Relaxed), 2);
    });
}
