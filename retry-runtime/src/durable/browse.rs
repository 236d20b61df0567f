//! What an operator's console reads: pages of calls under a filter (keyset pagination), the
//! count a filter selects, calls finished per minute, the queue lag per function and the calls
//! a call started. Each statement is written once for both SQL stores, as in
//! [`statements`](super::statements), and decoded with the [`rows`](super::rows) decoder.
//!
//! The queries use the existing indexes where they can: the queue lag reads `calls_due`
//! (SQLite) and the claimable index (PostgreSQL); pages and counts filtered by function read
//! the `(function, state)` indexes; on PostgreSQL, the per-minute counts and a page by last
//! change within a state read `retry_calls_state_updated`. No index was added: a page of
//! every state ordered by last change, the per-minute counts on SQLite and the children of a
//! call (no index on `parent`) scan the table; see the console's benchmark for the cost.

use core::fmt;
use core::fmt::Write as _;
use core::str::FromStr;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use super::millis::{from_millis, to_millis};
use super::record::{CallRecord, CallState};
use super::rows::StoredRow;
use super::statements::{record_columns, Param, Runner, Sql, Statement};
use super::store::{BoxFuture, StoreError};
use crate::CorrelationId;

/// Which calls a console page or a bulk action selects; every field set narrows the
/// selection.
///
/// ```
/// use retry_runtime::durable::{CallFilter, CallState};
///
/// let dead_invoices = CallFilter {
///     function: Some("billing::push_invoice".into()),
///     state: Some(CallState::Dead),
///     ..CallFilter::default()
/// };
/// assert!(dead_invoices.text.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Only calls of this function.
    pub function: Option<String>,
    /// Only calls in this state.
    pub state: Option<CallState>,
    /// Only this call.
    pub cid: Option<CorrelationId>,
    /// Only calls whose record last changed at or after this time.
    pub since: Option<SystemTime>,
    /// Only calls whose record last changed before this time.
    pub until: Option<SystemTime>,
    /// Only calls whose arguments, last error or dead reason contain this text (ignoring the
    /// case of ASCII letters).
    pub text: Option<String>,
}

/// The order of a page of calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CallSort {
    /// The latest change first (the default).
    #[default]
    UpdatedDesc,
    /// The oldest change first.
    UpdatedAsc,
    /// The earliest due first; only calls with a due time (pending and waiting ones).
    DueAsc,
    /// The latest due first; only calls with a due time.
    DueDesc,
}

impl CallSort {
    /// Every order, for a form's choices.
    pub const ALL: [CallSort; 4] = [
        CallSort::UpdatedDesc,
        CallSort::UpdatedAsc,
        CallSort::DueAsc,
        CallSort::DueDesc,
    ];

    /// The name in a URL: `updated-desc`, `updated-asc`, `due-asc`, `due-desc`.
    ///
    /// ```
    /// use retry_runtime::durable::CallSort;
    ///
    /// assert_eq!("due-asc".parse(), Ok(CallSort::DueAsc));
    /// assert_eq!(CallSort::UpdatedDesc.as_str(), "updated-desc");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CallSort::UpdatedDesc => "updated-desc",
            CallSort::UpdatedAsc => "updated-asc",
            CallSort::DueAsc => "due-asc",
            CallSort::DueDesc => "due-desc",
        }
    }

    /// The sort key of a record in this order (Unix milliseconds), for its cursor.
    fn key(self, record: &CallRecord) -> Option<i64> {
        match self {
            CallSort::UpdatedDesc | CallSort::UpdatedAsc => Some(to_millis(record.updated_at)),
            CallSort::DueAsc | CallSort::DueDesc => record.next_due_at.map(to_millis),
        }
    }
}

impl FromStr for CallSort {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CallSort::ALL
            .into_iter()
            .find(|sort| sort.as_str() == s)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "unknown order `{s}`: expected updated-desc, updated-asc, due-asc or due-desc"
                ))
            })
    }
}

/// Where the next page starts: the sort key (Unix milliseconds) and the ID of the last call
/// of the page before. Written `KEY.CID` in URLs.
///
/// ```
/// use retry_runtime::durable::Cursor;
/// use retry_runtime::CorrelationId;
///
/// let cursor = Cursor { key: 1_700_000_000_000, cid: CorrelationId::new() };
/// let text = cursor.to_string();
/// assert!(text.starts_with("1700000000000."));
/// assert_eq!(text.parse::<Cursor>()?, cursor);
/// assert!("no-dot".parse::<Cursor>().is_err());
/// # Ok::<(), retry_runtime::durable::StoreError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The sort key of the last call shown.
    pub key: i64,
    /// The ID of the last call shown.
    pub cid: CorrelationId,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.key, self.cid)
    }
}

impl FromStr for Cursor {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || StoreError::Invalid(format!("`{s}` is not a page cursor (KEY.CID)"));
        let (key, cid) = s.split_once('.').ok_or_else(bad)?;
        Ok(Cursor {
            key: key.parse().map_err(|_| bad())?,
            cid: cid.parse().map_err(|_| bad())?,
        })
    }
}

/// A page of calls to read: a filter, an order, where to start and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallQuery {
    /// Which calls.
    pub filter: CallFilter,
    /// In which order.
    pub sort: CallSort,
    /// After which call (`None`: the first page).
    pub after: Option<Cursor>,
    /// At most this many calls.
    pub limit: usize,
}

/// A page of calls and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPage {
    /// The calls, in the query's order.
    pub calls: Vec<CallRecord>,
    /// The cursor of the next page, `None` on the last.
    pub next: Option<Cursor>,
}

/// Calls of one function whose record last changed in one minute, by outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteCount {
    /// The function's registered name.
    pub function: String,
    /// The start of the minute.
    pub minute: SystemTime,
    /// Calls that succeeded in that minute.
    pub succeeded: u64,
    /// Calls whose last change in that minute was a failure: an attempt failed (the call now
    /// waits for its next one) or the call was given up (dead).
    pub failed: u64,
}

/// The calls of one function that are due and not yet claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLag {
    /// The function's registered name.
    pub function: String,
    /// How many pending or waiting calls are due.
    pub due: u64,
    /// The due time of the oldest of them: the queue lag is `now` minus this.
    pub oldest_due: SystemTime,
}

/// Calls finished or failed per function, state and minute of their last change, since `$1`.
static THROUGHPUT: Sql = Sql::new(
    "SELECT function, state, updated_at / 60000, count(*) FROM {calls} \
     WHERE state IN ('succeeded', 'waiting', 'dead') AND updated_at >= $1 \
     GROUP BY function, state, updated_at / 60000",
);

/// Due, unclaimed calls per function: how many and the oldest due time.
static QUEUE_LAG: Sql = Sql::new(
    "SELECT function, count(*), min(next_due_at) FROM {calls} \
     WHERE state IN ('pending', 'waiting') AND next_due_at <= $1 GROUP BY function",
);

/// The calls a call started, oldest first.
static CHILDREN: Sql = Sql::new(concat!(
    "SELECT ",
    record_columns!(),
    " FROM {calls} WHERE parent = $1 ORDER BY created_at, cid LIMIT $2"
));

/// `text` as a `LIKE` pattern matching it anywhere, lowercased, its wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn limit(n: usize) -> Param {
    Param::BigInt(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A statement whose text depends on which filters are set: only the conditions of the set
/// ones are written, so that SQLite, which plans a statement before it sees its values, can
/// choose an index for them. Each distinct text is made once and kept (there are a few
/// hundred at most: which filters are set, the order, whether a cursor is given).
struct Built {
    text: String,
    params: Vec<Param>,
}

impl Built {
    fn new(head: &str) -> Self {
        Built {
            text: format!("{head} WHERE 1 = 1"),
            params: Vec::new(),
        }
    }

    /// Adds ` AND condition`, its `$?` standing for the next placeholder, bound to `value`.
    fn and(&mut self, condition: &str, value: Param) {
        self.params.push(value);
        let mark = format!("${}", self.params.len());
        self.text.push_str(" AND ");
        self.text.push_str(&condition.replace("$?", &mark));
    }

    /// Adds the conditions of the filter's set fields.
    fn filter(&mut self, filter: &CallFilter) {
        if let Some(function) = &filter.function {
            self.and("function = $?", Param::Text(function.clone()));
        }
        if let Some(state) = filter.state {
            self.and("state = $?", Param::Text(state.as_str().to_owned()));
        }
        if let Some(cid) = filter.cid {
            self.and("cid = $?", Param::Text(cid.to_string()));
        }
        if let Some(since) = filter.since {
            self.and("updated_at >= $?", Param::BigInt(to_millis(since)));
        }
        if let Some(until) = filter.until {
            self.and("updated_at < $?", Param::BigInt(to_millis(until)));
        }
        if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            self.and(
                "(lower(args) LIKE $? ESCAPE '\\' \
                 OR lower(COALESCE(last_error, '')) LIKE $? ESCAPE '\\' \
                 OR lower(COALESCE(dead_reason, '')) LIKE $? ESCAPE '\\')",
                Param::Text(contains_pattern(text)),
            );
        }
    }

    fn statement(self) -> Statement {
        Statement {
            sql: interned(self.text),
            params: self.params,
        }
    }
}

/// The statement of `text`, made once.
fn interned(text: String) -> &'static Sql {
    static MADE: OnceLock<Mutex<HashMap<String, &'static Sql>>> = OnceLock::new();
    let mut made = MADE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(sql) = made.get(&text) {
        return sql;
    }
    let template: &'static str = Box::leak(text.clone().into_boxed_str());
    let sql: &'static Sql = Box::leak(Box::new(Sql::new(template)));
    made.insert(text, sql);
    sql
}

/// The statement of a page; it asks one call more than the limit, to know whether another
/// page follows.
pub(crate) fn page(query: &CallQuery) -> Statement {
    let (key, cmp, order) = match query.sort {
        CallSort::UpdatedDesc => ("updated_at", "<", "DESC"),
        CallSort::UpdatedAsc => ("updated_at", ">", "ASC"),
        CallSort::DueAsc => ("next_due_at", ">", "ASC"),
        CallSort::DueDesc => ("next_due_at", "<", "DESC"),
    };
    let mut built = Built::new(concat!("SELECT ", record_columns!(), " FROM {calls}"));
    built.filter(&query.filter);
    if key == "next_due_at" {
        built.text.push_str(" AND next_due_at IS NOT NULL");
    }
    if let Some(after) = query.after {
        built.params.push(Param::BigInt(after.key));
        built.and(
            &format!("({key}, cid) {cmp} (${}, $?)", built.params.len()),
            Param::Text(after.cid.to_string()),
        );
    }
    built.params.push(limit(query.limit.saturating_add(1)));
    let last = built.params.len();
    let _ = write!(
        built.text,
        " ORDER BY {key} {order}, cid {order} LIMIT ${last}"
    );
    built.statement()
}

/// The page of `records` read by [`page`]'s statement.
pub(crate) fn page_of(query: &CallQuery, mut records: Vec<CallRecord>) -> CallPage {
    let next = if records.len() > query.limit {
        records.truncate(query.limit);
        records.last().and_then(|last| {
            query
                .sort
                .key(last)
                .map(|key| Cursor { key, cid: last.cid })
        })
    } else {
        None
    };
    CallPage {
        calls: records,
        next,
    }
}

pub(crate) fn count(filter: &CallFilter) -> Statement {
    let mut built = Built::new("SELECT count(*) FROM {calls}");
    built.filter(filter);
    built.statement()
}

pub(crate) fn throughput(since: SystemTime) -> Statement {
    Statement {
        sql: &THROUGHPUT,
        params: vec![Param::BigInt(to_millis(since))],
    }
}

pub(crate) fn queue_lag(now: SystemTime) -> Statement {
    Statement {
        sql: &QUEUE_LAG,
        params: vec![Param::BigInt(to_millis(now))],
    }
}

pub(crate) fn children(cid: CorrelationId, max: usize) -> Statement {
    Statement {
        sql: &CHILDREN,
        params: vec![Param::Text(cid.to_string()), limit(max)],
    }
}

/// The shape of a row of the browsing queries that are not records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// [`count`]: one number.
    Count,
    /// [`throughput`]: function, state, minute number, count.
    Minute,
    /// [`queue_lag`]: function, count, oldest due time.
    Lag,
}

/// A decoded row of a [`Shape`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Count(u64),
    Minute {
        function: String,
        state: CallState,
        minute: i64,
        count: u64,
    },
    Lag(QueueLag),
}

fn malformed(what: &str) -> StoreError {
    StoreError::Backend(format!("a browsing query returned a malformed row: {what}"))
}

fn int<R: StoredRow>(row: &R, idx: usize) -> Result<i64, StoreError> {
    row.int(idx)?
        .ok_or_else(|| malformed(&format!("column {idx} is NULL")))
}

fn unsigned<R: StoredRow>(row: &R, idx: usize) -> Result<u64, StoreError> {
    let v = int(row, idx)?;
    u64::try_from(v).map_err(|_| malformed(&format!("{v} in column {idx} is negative")))
}

fn text<R: StoredRow>(row: &R, idx: usize) -> Result<String, StoreError> {
    row.text(idx)?
        .ok_or_else(|| malformed(&format!("column {idx} is NULL")))
}

fn count_row<R: StoredRow>(row: &R) -> Result<Item, StoreError> {
    Ok(Item::Count(unsigned(row, 0)?))
}

fn minute_row<R: StoredRow>(row: &R) -> Result<Item, StoreError> {
    Ok(Item::Minute {
        function: text(row, 0)?,
        state: text(row, 1)?
            .parse()
            .map_err(|e| malformed(&format!("{e}")))?,
        minute: int(row, 2)?,
        count: unsigned(row, 3)?,
    })
}

fn lag_row<R: StoredRow>(row: &R) -> Result<Item, StoreError> {
    Ok(Item::Lag(QueueLag {
        function: text(row, 0)?,
        due: unsigned(row, 1)?,
        oldest_due: from_millis(int(row, 2)?),
    }))
}

/// The decoder of rows of `shape`, as a function pointer (what the PostgreSQL store takes).
pub(crate) fn decoder<R: StoredRow>(shape: Shape) -> fn(&R) -> Result<Item, StoreError> {
    match shape {
        Shape::Count => count_row::<R>,
        Shape::Minute => minute_row::<R>,
        Shape::Lag => lag_row::<R>,
    }
}

/// A row of `shape`, decoded.
pub(crate) fn decode<R: StoredRow>(shape: Shape, row: &R) -> Result<Item, StoreError> {
    decoder(shape)(row)
}

/// What a SQL store supplies, beside [`Runner`], to run the browsing queries.
pub(crate) trait BrowseRunner: Runner {
    /// Runs a query whose rows have `shape`.
    fn items(
        &self,
        statement: Statement,
        shape: Shape,
    ) -> BoxFuture<'_, Result<Vec<Item>, StoreError>>;
}

/// The calls per minute from the rows of [`throughput`], by function then minute.
pub(crate) fn minutes(items: Vec<Item>) -> Vec<MinuteCount> {
    let mut by_minute: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
    for item in items {
        if let Item::Minute {
            function,
            state,
            minute,
            count,
        } = item
        {
            let slot = by_minute.entry((function, minute)).or_default();
            if state == CallState::Succeeded {
                slot.0 += count;
            } else {
                slot.1 += count;
            }
        }
    }
    by_minute
        .into_iter()
        .map(|((function, minute), (succeeded, failed))| MinuteCount {
            function,
            minute: from_millis(minute.saturating_mul(60_000)),
            succeeded,
            failed,
        })
        .collect()
}

/// The browsing methods of [`Backend`](super::Backend), for a store that is a
/// [`BrowseRunner`].
///
/// Without a state (or a text) in the filter, a page is read state by state and merged: each
/// state's part is an index range (`(state, updated_at)`, `(state, next_due_at)`), where one
/// query over every state would sort the whole table.
pub(crate) async fn browse<S: BrowseRunner + ?Sized>(
    store: &S,
    query: &CallQuery,
) -> Result<CallPage, StoreError> {
    // A state needs no merge; a text filter reads every row anyway: once is enough.
    if query.filter.state.is_some() || query.filter.text.is_some() {
        return Ok(page_of(query, store.records(page(query)).await?));
    }
    let states: &[CallState] = match query.sort {
        // Only pending and waiting calls have a due time.
        CallSort::DueAsc | CallSort::DueDesc => &[CallState::Pending, CallState::Waiting],
        CallSort::UpdatedAsc | CallSort::UpdatedDesc => &CallState::ALL,
    };
    let mut records = Vec::new();
    for state in states {
        let mut part = query.clone();
        part.filter.state = Some(*state);
        records.extend(store.records(page(&part)).await?);
    }
    merge(query.sort, &mut records);
    Ok(page_of(query, records))
}

/// Sorts the parts of a page read state by state in the page's order, as the statements
/// order them: by key, then by ID.
fn merge(sort: CallSort, records: &mut [CallRecord]) {
    records.sort_by_cached_key(|r| (sort.key(r), r.cid.to_string()));
    if matches!(sort, CallSort::UpdatedDesc | CallSort::DueDesc) {
        records.reverse();
    }
}

pub(crate) async fn count_matching<S: BrowseRunner + ?Sized>(
    store: &S,
    filter: &CallFilter,
) -> Result<u64, StoreError> {
    let items = store.items(count(filter), Shape::Count).await?;
    Ok(match items.first() {
        Some(Item::Count(n)) => *n,
        _ => 0,
    })
}

pub(crate) async fn calls_per_minute<S: BrowseRunner + ?Sized>(
    store: &S,
    since: SystemTime,
) -> Result<Vec<MinuteCount>, StoreError> {
    Ok(minutes(
        store.items(throughput(since), Shape::Minute).await?,
    ))
}

pub(crate) async fn lag<S: BrowseRunner + ?Sized>(
    store: &S,
    now: SystemTime,
) -> Result<Vec<QueueLag>, StoreError> {
    let items = store.items(queue_lag(now), Shape::Lag).await?;
    let mut lags: Vec<QueueLag> = items
        .into_iter()
        .filter_map(|item| match item {
            Item::Lag(lag) => Some(lag),
            _ => None,
        })
        .collect();
    lags.sort_by(|a, b| a.function.cmp(&b.function));
    Ok(lags)
}

/// The [`Backend`](super::Backend) browsing methods, for a store that is a [`BrowseRunner`]
/// (placed in its `impl Backend`).
macro_rules! browse_methods {
    () => {
        fn browse<'a>(
            &'a self,
            query: &'a $crate::durable::CallQuery,
        ) -> $crate::durable::BoxFuture<
            'a,
            Result<$crate::durable::CallPage, $crate::durable::StoreError>,
        > {
            Box::pin($crate::durable::browse::browse(self, query))
        }

        fn count_matching<'a>(
            &'a self,
            filter: &'a $crate::durable::CallFilter,
        ) -> $crate::durable::BoxFuture<'a, Result<u64, $crate::durable::StoreError>> {
            Box::pin($crate::durable::browse::count_matching(self, filter))
        }

        fn calls_per_minute(
            &self,
            since: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<Vec<$crate::durable::MinuteCount>, $crate::durable::StoreError>,
        > {
            Box::pin($crate::durable::browse::calls_per_minute(self, since))
        }

        fn queue_lag(
            &self,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<Vec<$crate::durable::QueueLag>, $crate::durable::StoreError>,
        > {
            Box::pin($crate::durable::browse::lag(self, now))
        }

        fn children(
            &self,
            cid: $crate::CorrelationId,
            limit: usize,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<Vec<$crate::durable::CallRecord>, $crate::durable::StoreError>,
        > {
            use $crate::durable::statements::Runner;
            self.records($crate::durable::browse::children(cid, limit))
        }
    };
}
pub(crate) use browse_methods;

/// The error of a backend that cannot browse (the default of the browsing methods).
pub(crate) fn unsupported<T: Send + 'static>() -> BoxFuture<'static, Result<T, StoreError>> {
    Box::pin(async {
        Err(StoreError::Invalid(
            "this store cannot be browsed (its backend does not implement the console's queries)"
                .into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::{contains_pattern, page, CallFilter, CallQuery, CallSort, Cursor, THROUGHPUT};
    use crate::durable::statements::Dialect;

    #[test]
    fn a_text_filter_escapes_the_like_wildcards() {
        assert_eq!(contains_pattern("50%_a\\B"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn pages_write_only_the_conditions_of_the_filters_set() {
        let mut query = CallQuery {
            filter: CallFilter {
                state: Some(crate::durable::CallState::Dead),
                ..CallFilter::default()
            },
            sort: CallSort::UpdatedDesc,
            after: Some(Cursor {
                key: 7,
                cid: crate::CorrelationId::new(),
            }),
            limit: 10,
        };
        let statement = page(&query);
        let text = statement.text(Dialect::Postgres);
        assert!(
            text.ends_with(
                "FROM retry_calls WHERE 1 = 1 AND state = $1 AND (updated_at, cid) < ($2, $3) \
                 ORDER BY updated_at DESC, cid DESC LIMIT $4"
            ),
            "{text}"
        );
        assert_eq!(statement.params.len(), 4);
        query.sort = CallSort::DueAsc;
        query.after = None;
        query.filter.text = Some("x".into());
        let statement = page(&query);
        let text = statement.text(Dialect::Sqlite);
        assert!(
            text.contains("FROM calls WHERE 1 = 1 AND state = ?1 AND (lower(args) LIKE ?2"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "AND next_due_at IS NOT NULL ORDER BY next_due_at ASC, cid ASC LIMIT ?3"
            ),
            "{text}"
        );
        // The same text is made once.
        assert!(std::ptr::eq(page(&query).sql, statement.sql));
    }

    #[test]
    fn a_version_1_store_gains_the_index_of_the_counts_per_minute() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let v1 = rusqlite::Connection::open(&path).unwrap();
        v1.execute_batch(include_str!("schema.sql")).unwrap();
        v1.execute_batch(&format!(
            "PRAGMA application_id = {}; PRAGMA user_version = 1;",
            crate::durable::sqlite::APPLICATION_ID
        ))
        .unwrap();
        drop(v1);
        crate::durable::SqliteBackend::open_file(&path, crate::durable::Synchronous::Full, false)
            .unwrap();
        let db = rusqlite::Connection::open(&path).unwrap();
        let version: u32 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, crate::durable::sqlite::SCHEMA_VERSION);
        let plan: String = db
            .query_row(
                &format!("EXPLAIN QUERY PLAN {}", THROUGHPUT.text(Dialect::Sqlite)),
                [0_i64],
                |r| r.get(3),
            )
            .unwrap();
        assert!(
            plan.contains("COVERING INDEX calls_state_updated"),
            "{plan}"
        );
    }

    #[test]
    fn sorts_and_cursors_read_back_what_they_write() {
        for sort in CallSort::ALL {
            assert_eq!(sort.as_str().parse::<CallSort>(), Ok(sort));
        }
        let cursor = Cursor {
            key: 42,
            cid: crate::CorrelationId::new(),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        assert!("x.y".parse::<Cursor>().is_err());
    }
}
