//! `retry-store`: the operator's tool for the durable store of `#[retry]` calls.
//!
//! ```text
//! retry-store --store sqlite:calls.db stats
//! retry-store --store sqlite:calls.db list --state dead --function billing::charge
//! retry-store --store sqlite:calls.db show 01JD5Z3KQ8M4X2V7N0R6T9B1CA
//! retry-store --store sqlite:calls.db requeue --dead --function billing::charge
//! retry-store --store sqlite:calls.db purge --state succeeded --older-than 7d
//! retry-store --store sqlite:calls.db pause billing::charge
//! retry-store --store sqlite:calls.db resume billing::charge
//! retry-store --store sqlite:calls.db workers
//! retry-store --store sqlite:calls.db limit billing::charge 2
//! retry-store --store sqlite:calls.db serve --listen 127.0.0.1:7878 --read-only
//! ```
//!
//! The store URL can come from `RETRY_STORE`: `sqlite:PATH` or
//! `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (also `postgresql://`). Tables by default,
//! `--json` for scripts. The tool never creates a store: a missing file, or a PostgreSQL
//! database without the store's tables, is an error. Errors are one line on stderr and
//! a non-zero exit status. A reader that stops early (`retry-store list | head -1`) ends the
//! tool quietly with exit status 0. Every write command is recorded in the store's audit, as
//! `cli:$USER` (`pause` and `resume` as their `--by`), and shown on the console's audit page.

mod audit;
mod duration;
mod limit;
mod table;
mod workers;

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use retry_runtime::durable::{
    format_time, CallRecord, CallState, ListFilter, PausedFunction, Stats, Store,
};
use retry_runtime::CorrelationId;
use serde_json::json;

use crate::table::{clip, render, Align};

/// Inspect and repair the durable store of `#[retry]` calls.
#[derive(Parser)]
#[command(name = "retry-store", version, after_help = JSON_HELP)]
struct Cli {
    /// The store: `sqlite:PATH` (or `sqlite:PATH?synchronous=...`), or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
    #[arg(long, env = "RETRY_STORE", value_name = "URL")]
    store: String,
    /// Print JSON instead of tables (the shapes are below).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// What `--json` prints, in `--help`.
const JSON_HELP: &str = "\
--json output:
  stats                  {\"rows\": [{\"function\", \"state\", \"count\"}], \"total\": N,
                          \"unclaimed\": [{\"function\", \"since\"}],
                          \"paused\": [{\"function\", \"since\", \"by\"}]}
  list                   an array of call records
  show                   one call record
  requeue, cancel, purge {\"command\": \"requeue\"|\"cancel\"|\"purge\", \"count\": N,
                          \"cid\": \"ID\" or null (a command over many calls)}
  pause, resume          the same, with \"count\" 1, or 0 when the function already was
                          paused (pause) or was not paused (resume), and \"cid\" null
  workers                an array of {\"id\", \"host\", \"pid\", \"started_at\", \"heartbeat_at\",
                          \"heartbeat_interval\" (ms), \"running\", \"stopped_at\",
                          \"status\": \"live\"|\"gone\"|\"stopped\", \"held\": [cid]}
  limit FUNCTION N|none  the same (\"count\" 0: there was no operator's limit to clear),
                          with \"function\" and \"max_running\" (the limit now, or null)
  limit                  [{\"function\", \"max_running\", \"declared\", \"operator\", \"set_at\"}]
A call record's `args` is the call's arguments as a JSON value (an object keyed by the
parameters' names), not text.

Unclaimed calls: `stats` marks a function whose calls have been due and untouched for
`--unclaimed-after` (default 5m): no running worker has claimed them, so either no worker is
up or none registers that name (a typo, a renamed function). The tool cannot see which names
the workers register; it sees only calls that nobody takes. A paused function (`pause`) is
marked paused instead: no worker claims its calls until `resume`.";

#[derive(Subcommand)]
enum Command {
    /// Count calls per function and state; mark functions whose due calls nobody claims.
    Stats {
        /// A function is marked when one of its pending or waiting calls has been due and
        /// untouched for this long (90s, 30m, 1h, 7d).
        #[arg(long, value_parser = duration::parse, value_name = "DURATION", default_value = "5m")]
        unclaimed_after: Duration,
    },
    /// List calls, oldest change first.
    List {
        /// Only calls in this state (pending, running, waiting, succeeded, dead, cancelled).
        #[arg(long, value_parser = parse_state)]
        state: Option<CallState>,
        /// Only calls of this function.
        #[arg(long)]
        function: Option<String>,
        /// Only calls unchanged for at least this long (90s, 30m, 1h, 7d).
        #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
        older_than: Option<Duration>,
        /// At most this many calls.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Show one call: every field, its last error and its arguments.
    Show {
        /// The call's correlation ID.
        cid: String,
    },
    /// Put a dead or cancelled call, or every dead call, back to pending.
    Requeue(RequeueArgs),
    /// Cancel a pending, waiting or running call.
    Cancel {
        /// The call's correlation ID.
        cid: String,
    },
    /// Delete finished calls of one state, unchanged for at least the given time.
    Purge {
        /// succeeded, dead or cancelled.
        #[arg(long, value_parser = parse_state)]
        state: CallState,
        /// Only calls unchanged for at least this long (90s, 30m, 1h, 7d).
        #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
        older_than: Duration,
    },
    /// Pause a function across every worker of the store: from their next claim on, no
    /// worker takes its calls (attempts already running finish) until `resume`.
    Pause {
        /// The function's registered name.
        function: String,
        /// Who pauses it, kept in the store, shown by `stats` and written to the audit
        /// (default: cli:$USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Resume a paused function: workers claim its due calls again within a second.
    Resume {
        /// The function's registered name.
        function: String,
        /// Who resumes it, logged by programs using the store and written to the audit
        /// (default: cli:$USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// The workers of the store from their heartbeats: live ones, gone ones (no heartbeat for
    /// three intervals, no clean shutdown) with the calls they still hold, stopped ones.
    Workers,
    /// Limit a function's attempts running at once across every worker (`N`), or clear the
    /// operator's limit (`none`); alone, list the functions with a limit.
    ///
    /// The operator's limit wins over the function's own `max_running = N` until cleared,
    /// whatever workers start meanwhile; cleared, the function's own applies again. Workers
    /// take it into account from their next claim (other processes within a second).
    Limit {
        /// The function's registered name.
        #[arg(requires = "max_running")]
        function: Option<String>,
        /// The most attempts running at once (1 or more), or `none`.
        #[arg(value_parser = limit::parse, value_name = "N|none")]
        max_running: Option<limit::Value>,
    },
    /// Serve the operators' console (web pages over the store, live) until stopped.
    ///
    /// Listens on 127.0.0.1:7878 by default; any address other than a loopback one needs a
    /// token, or the command refuses to start.
    Serve {
        /// The address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
        listen: std::net::SocketAddr,
        /// Serve the pages only: no requeue, cancel, purge, pause or resume.
        #[arg(long)]
        read_only: bool,
        /// The token every request must carry: an `Authorization: Bearer` header, or typed
        /// once in the login form (which sets a login cookie). Never put it in a URL.
        #[arg(
            long,
            env = "RETRY_CONSOLE_TOKEN",
            hide_env_values = true,
            value_name = "TOKEN"
        )]
        token: Option<String>,
        /// The path the console is served under behind a reverse proxy (`/admin/retry`).
        #[arg(long, value_name = "PATH", default_value = "")]
        base_path: String,
    },
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["cid", "dead"]))]
struct RequeueArgs {
    /// The call's correlation ID.
    cid: Option<String>,
    /// Every dead call (of `--function`, if given).
    #[arg(long, conflicts_with = "cid")]
    dead: bool,
    /// With `--dead`: only this function's calls.
    #[arg(long, requires = "dead")]
    function: Option<String>,
}

fn parse_state(text: &str) -> Result<CallState, String> {
    text.parse().map_err(|e| format!("{e}"))
}

fn parse_cid(text: &str) -> Result<CorrelationId, String> {
    text.parse()
        .map_err(|e| format!("malformed correlation ID `{text}`: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(out) => match write_out(&mut io::stdout().lock(), &out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(io::stderr(), "retry-store: cannot write the output: {e}");
                ExitCode::FAILURE
            }
        },
        Err(message) => {
            let _ = writeln!(io::stderr(), "retry-store: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `serve`: the console's router (the `retry-console` crate) on `listen`, until stopped.
async fn serve(
    url: &str,
    listen: std::net::SocketAddr,
    read_only: bool,
    token: Option<String>,
    base_path: String,
) -> Result<String, String> {
    let config = retry_console::ConsoleConfig {
        read_only,
        token: token.filter(|t| !t.is_empty()),
        base_path,
        store_label: Some(store_label(url)),
        ..retry_console::ConsoleConfig::default()
    };
    // Refused before the store is even opened.
    retry_console::listen_allowed(listen, &config).map_err(|e| e.to_string())?;
    let store = Store::open_existing(url).await.map_err(|e| e.to_string())?;
    let console = retry_console::Console::new(store, config).map_err(|e| e.to_string())?;
    let _ = writeln!(
        io::stderr(),
        "retry-store: the console of {} on http://{listen}/{}",
        store_label(url),
        if read_only { " (read-only)" } else { "" }
    );
    retry_console::serve(console, listen)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::new())
}

/// The store as the console's header names it, with nothing that could be a password: a
/// SQLite path, or a PostgreSQL URL's host and database (what follows the last `@`, without
/// the query).
fn store_label(url: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        let host = rest.rsplit('@').next().unwrap_or(rest);
        let host = host.split('?').next().unwrap_or(host);
        format!("postgres://{host}")
    } else {
        url.to_owned()
    }
}

/// Writes `text` to `out`. A reader that closed its end (`| head -1`) is not an error: the
/// tool has nothing more to say to it.
fn write_out(out: &mut impl io::Write, text: &str) -> io::Result<()> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Runs the command; the text to print, or the one-line error.
async fn run(cli: Cli) -> Result<String, String> {
    let command = match cli.command {
        Command::Serve {
            listen,
            read_only,
            token,
            base_path,
        } => return serve(&cli.store, listen, read_only, token, base_path).await,
        command => command,
    };
    let store = Store::open_existing(&cli.store)
        .await
        .map_err(|e| e.to_string())?;
    let json = cli.json;
    match command {
        Command::Serve { .. } => unreachable!("`serve` returned above"),
        Command::Stats { unclaimed_after } => stats(&store, unclaimed_after, json).await,
        Command::List {
            state,
            function,
            older_than,
            limit,
        } => {
            let filter = ListFilter {
                state,
                function,
                older_than,
                limit,
            };
            let records = store.list(&filter).await.map_err(|e| e.to_string())?;
            Ok(if json {
                let records: Vec<_> = records.iter().map(record_json).collect();
                to_json(&records)
            } else {
                list_table(&records)
            })
        }
        Command::Show { cid } => {
            let record = find(&store, &cid).await?;
            Ok(if json {
                to_json(&record_json(&record))
            } else {
                show(&record)
            })
        }
        Command::Requeue(args) => requeue(&store, args, json).await,
        Command::Workers => workers::workers(&store, json).await,
        Command::Pause { function, by } => pause_or_resume(&store, &function, by, true, json).await,
        Command::Resume { function, by } => {
            pause_or_resume(&store, &function, by, false, json).await
        }
        Command::Limit {
            function: Some(function),
            max_running: Some(limit::Value(max_running)),
        } => limit::set(&store, &function, max_running, json).await,
        Command::Limit { .. } => limit::list(&store, json).await,
        Command::Cancel { cid } => {
            let record = find(&store, &cid).await?;
            let cancelled = store.cancel(record.cid).await.map_err(|e| e.to_string())?;
            audit::record(&store, "cancel", record.cid.to_string(), cancelled.into()).await?;
            if !cancelled {
                let now = store.get(record.cid).await.map_err(|e| e.to_string())?;
                let state = now.map_or("gone".into(), |r| r.state.to_string());
                return Err(format!(
                    "call {} is {state}: only pending, waiting or running calls can be cancelled",
                    record.cid
                ));
            }
            Ok(if json {
                done_json("cancel", 1, Some(record.cid))
            } else {
                format!("cancelled {}\n", record.cid)
            })
        }
        Command::Purge { state, older_than } => {
            if !state.is_finished() {
                return Err(format!(
                    "only finished calls can be purged (succeeded, dead, cancelled), not {state} ones"
                ));
            }
            let n = store
                .purge(state, older_than)
                .await
                .map_err(|e| e.to_string())?;
            let target = format!("state={state} older_than={}", duration::format(older_than));
            audit::record(&store, "purge", target, n).await?;
            Ok(if json {
                done_json("purge", n, None)
            } else {
                format!(
                    "purged {n} {state} calls unchanged for {}\n",
                    duration::format(older_than)
                )
            })
        }
    }
}

/// `stats`: the counts, the functions whose due calls nobody claims, the paused functions.
async fn stats(store: &Store, unclaimed_after: Duration, json: bool) -> Result<String, String> {
    let stats = store.stats().await.map_err(|e| e.to_string())?;
    let paused = store.paused().await.map_err(|e| e.to_string())?;
    let mut unclaimed = unclaimed(store, &stats, unclaimed_after).await?;
    // A paused function's calls are unclaimed on purpose: it is marked paused.
    unclaimed.retain(|(f, _)| !paused.iter().any(|p| p.function == *f));
    Ok(if json {
        let unclaimed: Vec<_> = unclaimed
            .iter()
            .map(|(f, since)| json!({ "function": f, "since": format_time(*since) }))
            .collect();
        let paused: Vec<_> = paused
            .iter()
            .map(|p| {
                json!({
                    "function": p.function,
                    "since": format_time(p.paused_at),
                    "by": p.paused_by,
                })
            })
            .collect();
        to_json(&json!({
            "rows": stats.rows,
            "total": stats.total(),
            "unclaimed": unclaimed,
            "paused": paused,
        }))
    } else {
        stats_table(&stats, &unclaimed, unclaimed_after, &paused)
    })
}

/// `pause` and `resume`: the write commands' answer, `count` 0 when nothing changed (the
/// function already was paused, or was not).
async fn pause_or_resume(
    store: &Store,
    function: &str,
    by: Option<String>,
    pause: bool,
    json: bool,
) -> Result<String, String> {
    // The store records the pause or resume in its audit, under this name.
    let by = by.unwrap_or_else(audit::actor);
    let changed = if pause {
        store.pause(function, &by).await
    } else {
        store.resume(function, &by).await
    }
    .map_err(|e| e.to_string())?;
    let command = if pause { "pause" } else { "resume" };
    Ok(if json {
        done_json(command, u64::from(changed), None)
    } else if changed {
        format!("{command}d {function}\n")
    } else if pause {
        format!("{function} was already paused\n")
    } else {
        format!("{function} was not paused\n")
    })
}

async fn requeue(store: &Store, args: RequeueArgs, json: bool) -> Result<String, String> {
    if let Some(cid) = args.cid {
        let record = find(store, &cid).await?;
        let requeued = store.requeue(record.cid).await.map_err(|e| e.to_string())?;
        audit::record(store, "requeue", record.cid.to_string(), requeued.into()).await?;
        if !requeued {
            return Err(format!(
                "call {} is {}: only dead or cancelled calls can be requeued",
                record.cid, record.state
            ));
        }
        return Ok(if json {
            done_json("requeue", 1, Some(record.cid))
        } else {
            format!("requeued {}\n", record.cid)
        });
    }
    let n = store
        .requeue_dead(args.function.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let target = match &args.function {
        Some(f) => format!("function={f} state=dead"),
        None => "state=dead".to_owned(),
    };
    audit::record(store, "requeue", target, n).await?;
    Ok(if json {
        done_json("requeue", n, None)
    } else {
        match args.function {
            Some(f) => format!("requeued {n} dead calls of {f}\n"),
            None => format!("requeued {n} dead calls\n"),
        }
    })
}

/// The record of the call `text` names: a malformed or unknown ID is an error.
async fn find(store: &Store, text: &str) -> Result<CallRecord, String> {
    let cid = parse_cid(text)?;
    store
        .get(cid)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no call with ID {cid} in the store"))
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut out = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("\"{e}\""));
    out.push('\n');
    out
}

/// What every write command prints with `--json`: the command, how many calls it changed,
/// and the call's ID when it named one (`null` for a command over many calls).
fn done_json(command: &str, count: u64, cid: Option<CorrelationId>) -> String {
    to_json(&json!({
        "command": command,
        "count": count,
        "cid": cid.map(|c| c.to_string()),
    }))
}

/// The user running the tool (`cli:` and this are who the audit names).
pub(crate) fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "retry-store".into())
}

/// A call record for `--json`, its arguments a JSON value rather than JSON text (text that
/// is not JSON stays a string).
fn record_json(record: &CallRecord) -> serde_json::Value {
    let mut value = serde_json::to_value(record).unwrap_or(serde_json::Value::Null);
    if let (Some(fields), Ok(args)) = (
        value.as_object_mut(),
        serde_json::from_str::<serde_json::Value>(&record.args),
    ) {
        fields.insert("args".into(), args);
    }
    value
}

/// The most calls per function and state [`unclaimed`] looks at.
const UNCLAIMED_SAMPLE: usize = 100;

/// The functions with a pending or waiting call due and untouched for at least `after`, each
/// with the earliest time one of them became due and untouched: calls no running worker
/// claims. Looks at the [`UNCLAIMED_SAMPLE`] oldest-changed calls of each such function and
/// state, so it costs a few small queries however large the store.
async fn unclaimed(
    store: &Store,
    stats: &Stats,
    after: Duration,
) -> Result<Vec<(String, SystemTime)>, String> {
    let Some(cutoff) = SystemTime::now().checked_sub(after) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<(String, SystemTime)> = Vec::new();
    for row in &stats.rows {
        if !matches!(row.state, CallState::Pending | CallState::Waiting) || row.count == 0 {
            continue;
        }
        let filter = ListFilter {
            state: Some(row.state),
            function: Some(row.function.clone()),
            older_than: Some(after),
            limit: Some(UNCLAIMED_SAMPLE),
        };
        let records = store.list(&filter).await.map_err(|e| e.to_string())?;
        // Due and untouched since the later of its due time and its last change.
        let since = records
            .iter()
            .filter_map(|r| r.next_due_at.map(|due| due.max(r.updated_at)))
            .filter(|since| *since <= cutoff)
            .min();
        let Some(since) = since else { continue };
        match found.iter_mut().find(|(f, _)| *f == row.function) {
            Some((_, earliest)) => *earliest = (*earliest).min(since),
            None => found.push((row.function.clone(), since)),
        }
    }
    Ok(found)
}

fn stats_table(
    stats: &Stats,
    unclaimed: &[(String, SystemTime)],
    after: Duration,
    paused: &[PausedFunction],
) -> String {
    let mut functions: Vec<&str> = stats.rows.iter().map(|r| r.function.as_str()).collect();
    functions.dedup();
    let mut headers = vec![("FUNCTION", Align::Left)];
    headers.extend(CallState::ALL.iter().map(|s| (upper(*s), Align::Right)));
    headers.push(("TOTAL", Align::Right));
    let line = |name: &str, count: &dyn Fn(CallState) -> u64| {
        let mut row = vec![name.to_owned()];
        let mut total = 0;
        for state in CallState::ALL {
            total += count(state);
            row.push(count(state).to_string());
        }
        row.push(total.to_string());
        row
    };
    let mut rows: Vec<Vec<String>> = functions
        .iter()
        .map(|f| line(f, &|s| stats.count(f, s)))
        .collect();
    rows.push(line("(all)", &|s| stats.count_state(s)));
    let mut out = render(&headers, &rows);
    for (function, since) in unclaimed {
        let _ = writeln!(
            out,
            "! {function}: due calls unclaimed since {} (over {}): is a worker running that \
             registers this name?",
            format_time(*since),
            duration::format(after)
        );
    }
    for p in paused {
        let _ = writeln!(
            out,
            "|| {}: paused since {} by {}: no worker claims its calls until `retry-store resume`",
            p.function,
            format_time(p.paused_at),
            p.paused_by
        );
    }
    out
}

fn upper(state: CallState) -> &'static str {
    match state {
        CallState::Pending => "PENDING",
        CallState::Running => "RUNNING",
        CallState::Waiting => "WAITING",
        CallState::Succeeded => "SUCCEEDED",
        CallState::Dead => "DEAD",
        CallState::Cancelled => "CANCELLED",
    }
}

fn list_table(records: &[CallRecord]) -> String {
    let headers = [
        ("CID", Align::Left),
        ("FUNCTION", Align::Left),
        ("STATE", Align::Left),
        ("ATTEMPTS", Align::Right),
        ("NEXT DUE", Align::Left),
        ("UPDATED", Align::Left),
        ("LAST ERROR", Align::Left),
    ];
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.cid.to_string(),
                r.function.clone(),
                r.state.to_string(),
                r.attempts.to_string(),
                r.next_due_at.map_or("-".into(), format_time),
                format_time(r.updated_at),
                r.last_error.as_deref().map_or("-".into(), |e| clip(e, 60)),
            ]
        })
        .collect();
    let mut out = render(&headers, &rows);
    let _ = writeln!(out, "{} calls", records.len());
    out
}

fn show(r: &CallRecord) -> String {
    let time = |t: Option<std::time::SystemTime>| t.map_or("-".into(), format_time);
    let text = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".into());
    let args = serde_json::from_str::<serde_json::Value>(&r.args)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| r.args.clone());
    let fields = [
        ("cid", r.cid.to_string()),
        ("parent", r.parent.map_or("-".into(), |p| p.to_string())),
        ("function", r.function.clone()),
        ("state", r.state.to_string()),
        ("attempts", r.attempts.to_string()),
        ("created at", format_time(r.created_at)),
        ("started at", time(r.started_at)),
        ("first attempt at", time(r.first_attempt_at)),
        ("last attempt at", time(r.last_attempt_at)),
        ("next due at", time(r.next_due_at)),
        ("worker", text(&r.worker)),
        ("lease until", time(r.lease_until)),
        ("fence", r.fence.to_string()),
        ("last wait", format!("{}ns", r.last_wait_ns)),
        ("updated at", format_time(r.updated_at)),
        ("dead reason", text(&r.dead_reason)),
        ("last error", text(&r.last_error)),
    ];
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in fields {
        let _ = writeln!(out, "{key:<width$}  {value}");
    }
    out.push_str("args:\n");
    for line in args.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod serve_tests {
    use super::store_label;

    #[test]
    fn the_console_header_never_shows_a_password() {
        for url in [
            "postgres://ops:hunter2@db.internal:5432/jobs?password=hunter2",
            "postgresql://ops:hun@ter2@db.internal/jobs",
        ] {
            let label = store_label(url);
            assert!(
                !label.contains("hunter2") && !label.contains("ter2"),
                "{label}"
            );
            assert!(label.contains("db.internal"), "{label}");
        }
        assert_eq!(store_label("sqlite:calls.db"), "sqlite:calls.db");
    }
}
