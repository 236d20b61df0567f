//! The SQLite store under faults of its file system: a full disk (a real one, a small tmpfs)
//! fails writes clearly, and the store recovers by itself once space is back; a store file
//! deleted under the running program refuses writes.
//!
//! The tmpfs needs `mount` rights (root, as in CI); without them the test says it is skipped
//! (the same recovery is tested everywhere with SQLite's `max_page_count`, in the backend's
//! unit tests).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use retry_runtime::durable::{NewCall, Store, StoreError};

/// A 2 MB tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount() -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                eprintln!(
                    "cannot mount a tmpfs ({}): the full-disk test is skipped",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("cannot run mount ({e}): the full-disk test is skipped");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system of `dir` with one file, until no byte more fits.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0_u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.write_all(&chunk[..1]);
    let _ = file.sync_all();
    path
}

#[tokio::test]
async fn a_full_disk_fails_writes_clearly_and_the_store_recovers_when_space_is_back() {
    let Some(tmpfs) = Tmpfs::mount() else {
        return;
    };
    let url = format!(
        "sqlite:{}?synchronous=off",
        tmpfs.path().join("calls.db").display()
    );
    let store = Store::open(&url).await.unwrap();
    let functions = vec!["f".to_owned()];
    store.enqueue(vec![NewCall::new("f", "[1]")]).await.unwrap();
    let filler = fill(tmpfs.path());
    let big = format!("[\"{}\"]", "x".repeat(16 * 1024));
    let mut err = None;
    for _ in 0..200 {
        if let Err(e) = store.enqueue(vec![NewCall::new("f", big.clone())]).await {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("a write fails on a full disk");
    assert!(matches!(err, StoreError::Io(_)), "{err:?}");
    assert!(err.to_string().contains("full"), "{err}");
    std::fs::remove_file(filler).unwrap();
    // Space is back: writes and claims work again, with no restart.
    store.enqueue(vec![NewCall::new("f", big)]).await.unwrap();
    let claimed = store
        .claim("w", &functions, 1000, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(!claimed.is_empty());
    let wal = std::fs::metadata(tmpfs.path().join("calls.db-wal")).map_or(0, |m| m.len());
    assert!(wal < 1024 * 1024, "the log was folded back: {wal} bytes");
}

#[tokio::test]
async fn a_deleted_store_file_refuses_enqueues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    let store = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    store.enqueue(vec![NewCall::new("f", "[]")]).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = store
        .enqueue(vec![NewCall::new("f", "[]")])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Io(_)), "{err:?}");
    assert!(
        text.contains(&path.display().to_string()) && text.contains("deleted"),
        "{text}"
    );
}
