//! Opening a store from its URL: [`StoreUrl`] reads the URL, [`Store::open`] and
//! [`Store::open_existing`] pick the backend it names. The backends know nothing of URLs
//! but their own (PostgreSQL's is read by `tokio-postgres`); the contract in `store.rs`
//! knows nothing of the backends.

use core::fmt;
use std::path::PathBuf;
use std::sync::Arc;

#[cfg(feature = "postgres")]
use super::postgres::PostgresBackend;
use super::redact::redact;
use super::sqlite::{SqliteBackend, Synchronous};
use super::store::{Backend, Store, StoreError};

/// A parsed store URL.
///
/// ```
/// use retry_runtime::durable::{StoreUrl, Synchronous};
///
/// assert_eq!(StoreUrl::parse("sqlite::memory:"), Ok(StoreUrl::SqliteMemory));
/// assert_eq!(
///     StoreUrl::parse("sqlite:calls.db?synchronous=normal"),
///     Ok(StoreUrl::SqliteFile { path: "calls.db".into(), synchronous: Synchronous::Normal }),
/// );
/// assert!(StoreUrl::parse("calls.db").is_err());
/// ```
///
/// `postgres://` and `postgresql://` URLs (any form `tokio-postgres` reads) are
/// [`StoreUrl::Postgres`] with the `postgres` feature, and [`StoreError::BadUrl`] without it.
/// The `Debug` form hides a URL's password.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite:PATH` or `sqlite:PATH?synchronous=...`; also `sqlite://PATH`, where the path
    /// is as written: `sqlite://calls.db` is relative, `sqlite:///var/lib/calls.db` absolute.
    SqliteFile {
        /// The database file.
        path: PathBuf,
        /// How hard SQLite works to make each commit survive a power loss (default `full`).
        synchronous: Synchronous,
    },
    /// `sqlite::memory:`: a private store that lives as long as its [`Store`].
    SqliteMemory,
    /// `postgres://...` or `postgresql://...`: a PostgreSQL database (needs retry-runtime's
    /// `postgres` cargo feature).
    Postgres {
        /// The URL as given.
        url: String,
    },
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::SqliteFile { path, synchronous } => f
                .debug_struct("SqliteFile")
                .field("path", path)
                .field("synchronous", synchronous)
                .finish(),
            StoreUrl::SqliteMemory => f.write_str("SqliteMemory"),
            StoreUrl::Postgres { url } => f
                .debug_struct("Postgres")
                .field("url", &redact(url))
                .finish(),
        }
    }
}

/// The schemes of store URLs, as an error names them.
const SCHEMES: &str = "`sqlite:`, `postgres://` or `postgresql://`";

/// A URL of another scheme (`mysql://...`), or of none (a bare path).
fn not_a_store_scheme(url: &str) -> StoreError {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme).filter(|s| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    match scheme {
        Some(scheme) => StoreError::BadUrl {
            // Another database's URL may hold its password.
            url: redact(url),
            reason: format!(
                "`{scheme}:` is not a store's scheme; a store URL starts with {SCHEMES}"
            ),
        },
        None => StoreError::BadUrl {
            url: url.to_owned(),
            reason: format!(
                "it has no scheme; a store URL starts with {SCHEMES} (for a file: `sqlite:{url}`)"
            ),
        },
    }
}

/// A PostgreSQL URL in a build without PostgreSQL.
#[cfg(not(feature = "postgres"))]
fn needs_postgres(url: &str) -> StoreError {
    StoreError::BadUrl {
        url: redact(url),
        reason: "PostgreSQL stores need retry-runtime's `postgres` cargo feature, which this \
                 program was built without"
            .into(),
    }
}

impl StoreUrl {
    /// Parses a store URL.
    ///
    /// # Errors
    /// [`StoreError::BadUrl`], naming the URL and what is wrong.
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let bad = |reason: &str| StoreError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                super::postgres::parse_url(url)?;
                return Ok(StoreUrl::Postgres {
                    url: url.to_owned(),
                });
            }
            #[cfg(not(feature = "postgres"))]
            return Err(needs_postgres(url));
        }
        let Some(rest) = url.strip_prefix("sqlite:") else {
            return Err(not_a_store_scheme(url));
        };
        if rest == ":memory:" {
            return Ok(StoreUrl::SqliteMemory);
        }
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(bad("the path is empty"));
        }
        let mut synchronous = Synchronous::Full;
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("synchronous", value)) => {
                    synchronous = match value.to_ascii_lowercase().as_str() {
                        "full" => Synchronous::Full,
                        "normal" => Synchronous::Normal,
                        "off" => Synchronous::Off,
                        _ => return Err(bad("`synchronous` must be `full`, `normal` or `off`")),
                    };
                }
                _ => return Err(bad(&format!("unknown parameter `{pair}`"))),
            }
        }
        Ok(StoreUrl::SqliteFile {
            path: PathBuf::from(path),
            synchronous,
        })
    }
}

/// Opens a SQLite store (file I/O) on tokio's blocking pool.
async fn open_sqlite(
    open: impl FnOnce() -> Result<SqliteBackend, StoreError> + Send + 'static,
) -> Result<SqliteBackend, StoreError> {
    tokio::task::spawn_blocking(open)
        .await
        .map_err(|e| StoreError::Backend(format!("opening the store failed: {e}")))?
}

impl Store {
    /// Opens (creating if needed) the store at `url`: `sqlite:PATH`,
    /// `sqlite:PATH?synchronous=full|normal|off`, `sqlite::memory:`, or with the `postgres`
    /// feature `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (also `postgresql://`; the
    /// store's tables are created in the database if missing).
    ///
    /// # Errors
    /// [`StoreError::BadUrl`], [`StoreError::NotAStore`] (not SQLite, damaged, or another
    /// program's database), [`StoreError::NewerSchema`], [`StoreError::Io`],
    /// [`StoreError::Backend`] (PostgreSQL: cannot connect).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_url(StoreUrl::parse(url)?, true).await
    }

    /// Like [`Store::open`], but never creates a store: a missing file is
    /// [`StoreError::NoStore`], a PostgreSQL database without the store's tables
    /// [`StoreError::NoSchema`]. For tools that inspect an existing store.
    ///
    /// # Errors
    /// As [`Store::open`], and [`StoreError::NoStore`], [`StoreError::NoSchema`].
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        Self::open_url(StoreUrl::parse(url)?, false).await
    }

    async fn open_url(url: StoreUrl, create: bool) -> Result<Store, StoreError> {
        let backend: Arc<dyn Backend> = match url {
            StoreUrl::SqliteMemory => Arc::new(open_sqlite(SqliteBackend::open_memory).await?),
            StoreUrl::SqliteFile { path, synchronous } => Arc::new(
                open_sqlite(move || SqliteBackend::open_file(&path, synchronous, create)).await?,
            ),
            #[cfg(feature = "postgres")]
            StoreUrl::Postgres { url } => Arc::new(PostgresBackend::open(&url, create).await?),
            #[cfg(not(feature = "postgres"))]
            StoreUrl::Postgres { url } => return Err(needs_postgres(&url)),
        };
        Ok(Store::from_backend(backend))
    }
}

#[cfg(test)]
mod tests {
    use super::{StoreError, StoreUrl};
    use std::path::PathBuf;

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn postgres_urls_need_the_feature() {
        for url in ["postgres://app:s3cret@db/calls", "postgresql://db/calls"] {
            let err = StoreUrl::parse(url).unwrap_err();
            assert!(matches!(err, StoreError::BadUrl { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains("retry-runtime's `postgres` cargo feature"),
                "{err}"
            );
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn another_scheme_is_told_every_accepted_scheme() {
        let err = StoreUrl::parse("mysql://app:s3cret@db/calls").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::BadUrl { .. }), "{text}");
        for scheme in ["`mysql:`", "`sqlite:`", "`postgres://`", "`postgresql://`"] {
            assert!(text.contains(scheme), "{scheme}: {text}");
        }
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("(feature `postgres`)"), "{text}");
        // A build with PostgreSQL (an operator's tool) says nothing of cargo features.
        assert_eq!(
            text.contains("(needs retry-runtime's `postgres` cargo feature)"),
            cfg!(not(feature = "postgres")),
            "{text}"
        );
        let bare = StoreUrl::parse("var/calls.db").unwrap_err().to_string();
        assert!(
            bare.contains("no scheme") && bare.contains("`sqlite:var/calls.db`"),
            "{bare}"
        );
    }

    #[test]
    fn sqlite_urls_with_two_slashes_are_relative_and_with_three_absolute() {
        let path = |url: &str| match StoreUrl::parse(url) {
            Ok(StoreUrl::SqliteFile { path, .. }) => path,
            other => panic!("{url}: {other:?}"),
        };
        assert_eq!(
            path("sqlite:///var/lib/calls.db"),
            PathBuf::from("/var/lib/calls.db")
        );
        assert_eq!(
            path("sqlite://var/lib/calls.db"),
            PathBuf::from("var/lib/calls.db")
        );
        assert_eq!(
            path("sqlite:/var/lib/calls.db"),
            PathBuf::from("/var/lib/calls.db")
        );
        assert_eq!(path("sqlite:calls.db"), PathBuf::from("calls.db"));
    }

    #[test]
    fn debug_hides_a_postgres_password() {
        let url = StoreUrl::Postgres {
            url: "postgres://app:s3cret@db/calls".into(),
        };
        assert!(!format!("{url:?}").contains("s3cret"), "{url:?}");
        assert!(StoreError::NoSchema {
            url: "postgres://db/x".into()
        }
        .to_string()
        .contains("postgres://db/x"));
    }
}
