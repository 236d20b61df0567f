//! The series a function exports are the ones its calls produced: an inline function has no
//! `retry_in_flight`, and a function whose calls only succeeded has no failure reasons.
//! (Before, every function registered eleven `retry_calls_total` series and the in-flight
//! gauge at its first call, including outcomes its mode cannot have.)
use metrics_util::debugging::DebuggingRecorder;
use retry_runtime::retry;

#[retry(max = 2, delay = "0ms")]
fn succeeds_second_time(n: &std::sync::atomic::AtomicU32) -> Result<u32, String> {
    if n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
        Err("once".into())
    } else {
        Ok(1)
    }
}

#[test]
fn an_inline_function_exports_only_what_its_calls_produced() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this binary");
    let n = std::sync::atomic::AtomicU32::new(0);
    assert_eq!(succeeds_second_time(&n), Ok(1));
    let mut series: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, ..)| {
            let mut labels: Vec<String> = key
                .key()
                .labels()
                .filter(|l| l.key() != "function" && l.key() != "mode")
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            format!("{}{{{}}}", key.key().name(), labels.join(","))
        })
        .collect();
    series.sort();
    assert_eq!(
        series,
        [
            "retry_call_attempts{}",
            "retry_call_duration_seconds{}",
            "retry_calls_total{outcome=succeeded}",
            "retry_retries_total{}",
        ]
    );
}
