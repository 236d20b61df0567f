//! The audit records of the write commands: every `requeue`, `cancel` and `purge` the tool
//! runs is written to the store's audit (who: `cli:` and the user running the tool; what;
//! on what; how many calls), as the console's actions are. `pause` and `resume` are recorded
//! by the store itself, under their `--by`.

use retry_runtime::durable::{AuditEntry, Store};

/// Who the tool acts as: `cli:` and the user running it (`$USER`).
pub(crate) fn actor() -> String {
    format!("cli:{}", crate::operator())
}

/// Records a write command that ran; an error says the command ran but was not recorded.
pub(crate) async fn record(
    store: &Store,
    action: &str,
    target: impl Into<String>,
    count: u64,
) -> Result<(), String> {
    store
        .record_audit(AuditEntry::new(actor(), action, target, count))
        .await
        .map_err(|e| format!("{action} done, but its audit record could not be written: {e}"))
}
