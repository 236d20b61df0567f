//! A subscriber that wants WARN and above still gets a failed call's "call failed" WARN event
//! (it used to be dropped: the end event was skipped unless INFO was enabled). Its own binary,
//! so that no other subscriber raises the global level.
#[path = "common/recorder.rs"]
mod recorder;

use retry_runtime::retry;
use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

#[retry(max = 1, delay = "0ms")]
fn always_fails() -> Result<(), String> {
    Err("down".into())
}

#[test]
fn a_warn_only_subscriber_sees_the_failed_call() {
    let rec = recorder::Recorder::default();
    let subscriber = tracing_subscriber::registry()
        .with(LevelFilter::WARN)
        .with(rec.clone());
    tracing::subscriber::with_default(subscriber, || {
        assert!(always_fails().is_err());
    });
    let recs = rec.take();
    let warns = recorder::events_at(&recs, Level::WARN);
    assert_eq!(warns.len(), 1, "{recs:?}");
    assert_eq!(recorder::events_at(&recs, Level::INFO).len(), 0);
}
