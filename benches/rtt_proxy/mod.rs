//! A delaying TCP proxy on loopback that counts round trips: the network between the workers
//! and PostgreSQL of `benches/durable_rtt.rs`.
//!
//! Every connection accepted on `127.0.0.1:0` is forwarded to the server. Each direction is a
//! delay line: a reader thread timestamps every chunk it reads and queues it, a writer thread
//! writes it out at arrival + the one-way delay, in order. The reader never waits for the
//! writer, so pipelined data is not held back by earlier data in flight: the link adds latency,
//! not a throughput limit. OS threads and blocking sockets, not tokio: tokio's timer ticks in
//! whole milliseconds, which would turn a 0.5 ms delay into 1 to 2 ms; `thread::sleep` is
//! accurate to tens of microseconds. `TCP_NODELAY` on both sides (no Nagle wait added).
//!
//! Counted, over all connections: bytes and chunks each way, connections, and round trips, as
//! client "flights": a chunk from the client that it sent after it last received something
//! (the first chunk of a connection is one too). A flight is what waits one round trip: the
//! client sent something, and sends again only after an answer. Pipelined statements sent
//! together are one flight; a server's unprompted message (a `NOTIFY` to a `LISTEN`er) is not
//! a round trip unless the client answers it.
//!
//! Each flight is also labelled with the statement it carries, read from PostgreSQL's
//! frontend protocol (`Query`, `Parse`, and `Bind` of a statement parsed before on that
//! connection): the first statement in the flight other than `BEGIN`/`COMMIT`/`ROLLBACK`
//! (its first 72 characters); a flight of `BEGIN` alone is "BEGIN (then: <the next
//! statement>)", one of `COMMIT` alone "COMMIT (after: <the statement before it>)", one
//! without any statement "(connect)" before the connection's first statement (the startup
//! message, authentication), else "(no statement)" (a `Terminate`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The proxy's counters at one moment; subtract two for an interval.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub connections: u64,
    pub flights: u64,
    pub client_bytes: u64,
    pub client_chunks: u64,
    pub server_bytes: u64,
    pub server_chunks: u64,
    /// Flights by the statement they carry.
    pub by_statement: HashMap<String, u64>,
}

impl Counts {
    /// `self - earlier`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let mut by_statement = HashMap::new();
        for (k, v) in &self.by_statement {
            let d = v - earlier.by_statement.get(k).copied().unwrap_or(0);
            if d > 0 {
                by_statement.insert(k.clone(), d);
            }
        }
        Counts {
            connections: self.connections - earlier.connections,
            flights: self.flights - earlier.flights,
            client_bytes: self.client_bytes - earlier.client_bytes,
            client_chunks: self.client_chunks - earlier.client_chunks,
            server_bytes: self.server_bytes - earlier.server_bytes,
            server_chunks: self.server_chunks - earlier.server_chunks,
            by_statement,
        }
    }
}

#[derive(Default)]
struct Shared {
    connections: AtomicU64,
    flights: AtomicU64,
    client_bytes: AtomicU64,
    client_chunks: AtomicU64,
    server_bytes: AtomicU64,
    server_chunks: AtomicU64,
    by_statement: Mutex<HashMap<String, u64>>,
    stop: AtomicBool,
}

impl Shared {
    fn label(&self, label: &str, n: u64) {
        if n > 0 {
            *self
                .by_statement
                .lock()
                .expect("the labels")
                .entry(label.to_owned())
                .or_insert(0) += n;
        }
    }
}

/// A running proxy; it stops accepting when dropped (open connections run until they close).
pub struct RttProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl RttProxy {
    /// Listens on `127.0.0.1:0`, forwarding to `target` with `one_way` added each way.
    pub fn start(target: SocketAddr, one_way: Duration) -> RttProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                s.connections.fetch_add(1, Ordering::Relaxed);
                forward(client, server, one_way, &s);
            }
        });
        RttProxy { addr, shared }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn counts(&self) -> Counts {
        let s = &self.shared;
        Counts {
            connections: s.connections.load(Ordering::Relaxed),
            flights: s.flights.load(Ordering::Relaxed),
            client_bytes: s.client_bytes.load(Ordering::Relaxed),
            client_chunks: s.client_chunks.load(Ordering::Relaxed),
            server_bytes: s.server_bytes.load(Ordering::Relaxed),
            server_chunks: s.server_chunks.load(Ordering::Relaxed),
            by_statement: s.by_statement.lock().expect("the labels").clone(),
        }
    }
}

impl Drop for RttProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accepting thread so that it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One connection: two delay lines, and the client's protocol read for the labels.
fn forward(client: TcpStream, server: TcpStream, one_way: Duration, shared: &Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Set when the client has been handed something since it last sent.
    let answered = Arc::new(AtomicBool::new(true));
    let (c_read, c_write) = (client.try_clone().expect("a socket"), client);
    let (s_read, s_write) = (server.try_clone().expect("a socket"), server);
    // Client to server: flights counted and labelled as read.
    {
        let (shared, answered) = (Arc::clone(shared), Arc::clone(&answered));
        let mut protocol = Protocol::default();
        delay_line(c_read, s_write, one_way, move |chunk| {
            shared
                .client_bytes
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            shared.client_chunks.fetch_add(1, Ordering::Relaxed);
            let flight = answered.swap(false, Ordering::AcqRel);
            if flight {
                shared.flights.fetch_add(1, Ordering::Relaxed);
            }
            protocol.read(chunk, flight, &shared);
        });
    }
    // Server to client: the client is answered once a chunk is written to it (the flag is set
    // just before the write, so that a quick answer cannot miss it).
    {
        let count = Arc::clone(shared);
        delay_line_then(
            s_read,
            c_write,
            one_way,
            move |chunk| {
                count
                    .server_bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                count.server_chunks.fetch_add(1, Ordering::Relaxed);
            },
            move || answered.store(true, Ordering::Release),
        );
    }
}

fn delay_line(
    from: TcpStream,
    to: TcpStream,
    delay: Duration,
    on_read: impl FnMut(&[u8]) + Send + 'static,
) {
    delay_line_then(from, to, delay, on_read, || {});
}

/// Reads chunks from `from` as they come (`on_read` each), writes each to `to` at its
/// arrival plus `delay`, in order, calling `on_sending` just before. End of input or an error closes
/// `to`'s writing side.
fn delay_line_then(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Duration,
    mut on_read: impl FnMut(&[u8]) + Send + 'static,
    on_sending: impl Fn() + Send + 'static,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0_u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let at = Instant::now() + delay;
                    on_read(&buf[..n]);
                    if tx.send((at, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((at, chunk)) = rx.recv() {
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            // Before the write: once written, the client may answer before this thread runs
            // again, and its answer must find the flag set.
            on_sending();
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// The client's side of PostgreSQL's protocol, read only for the statements' texts.
#[derive(Default)]
struct Protocol {
    buf: Vec<u8>,
    /// Past the startup message (which has no type byte).
    started: bool,
    /// Statement name -> text, from `Parse`.
    prepared: HashMap<String, String>,
    /// The current flight: counted, not yet labelled.
    unlabelled: bool,
    /// Flights of `BEGIN` alone, labelled with the next statement.
    begins: u64,
    /// The last statement labelled on this connection (for a flight of `COMMIT` alone).
    last: Option<String>,
}

impl Protocol {
    fn read(&mut self, chunk: &[u8], flight: bool, shared: &Shared) {
        if flight {
            // The previous flight carried no statement: the connection's start (its startup
            // message, then its authentication), or a `Terminate`.
            if self.unlabelled {
                let what = if self.last.is_none() {
                    "(connect)"
                } else {
                    "(no statement)"
                };
                shared.label(what, 1);
            }
            self.unlabelled = true;
        }
        self.buf.extend_from_slice(chunk);
        let mut at = 0;
        loop {
            let rest = &self.buf[at..];
            if !self.started {
                if rest.len() < 8 {
                    break;
                }
                let len = u32::from_be_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
                if rest.len() < len {
                    break;
                }
                let code = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
                // SSLRequest and GSSENCRequest are followed by another untyped message.
                if code != 80_877_103 && code != 80_877_104 {
                    self.started = true;
                }
                at += len;
                continue;
            }
            if rest.len() < 5 {
                break;
            }
            let len = u32::from_be_bytes(rest[1..5].try_into().expect("4 bytes")) as usize;
            if rest.len() < 1 + len {
                break;
            }
            let body = &rest[5..=len];
            let statement = match rest[0] {
                b'Q' => Some(cstr(body, 0).0),
                b'P' => {
                    let (name, next) = cstr(body, 0);
                    let text = cstr(body, next).0;
                    self.prepared.insert(name, text.clone());
                    Some(text)
                }
                b'B' => {
                    let (_portal, next) = cstr(body, 0);
                    let name = cstr(body, next).0;
                    self.prepared.get(&name).cloned()
                }
                _ => None,
            };
            at += 1 + len;
            if let Some(text) = statement {
                self.statement(&text, shared);
            }
        }
        self.buf.drain(..at);
    }

    fn statement(&mut self, text: &str, shared: &Shared) {
        let label = label(text);
        let upper = label.to_ascii_uppercase();
        let trivial = upper.starts_with("BEGIN")
            || upper.starts_with("COMMIT")
            || upper.starts_with("ROLLBACK")
            || upper.starts_with("START TRANSACTION");
        if !self.unlabelled {
            if !trivial {
                self.last = Some(label);
            }
            return;
        }
        if trivial {
            if upper.starts_with("BEGIN") || upper.starts_with("START") {
                self.begins += 1;
            } else {
                let word = if upper.starts_with("COMMIT") {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                };
                let last = self.last.as_deref().unwrap_or("?");
                shared.label(&format!("{word} (after: {last})"), 1);
            }
            self.unlabelled = false;
            return;
        }
        shared.label(&label, 1);
        shared.label(&format!("BEGIN (then: {label})"), self.begins);
        self.begins = 0;
        self.unlabelled = false;
        self.last = Some(label);
    }
}

/// The NUL-terminated string at `from`, and the index after its NUL.
fn cstr(body: &[u8], from: usize) -> (String, usize) {
    let rest = body.get(from..).unwrap_or_default();
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    (
        String::from_utf8_lossy(&rest[..end]).into_owned(),
        from + end + 1,
    )
}

/// A statement's first 72 characters, white space collapsed.
fn label(text: &str) -> String {
    let collapsed: Vec<&str> = text.split_whitespace().collect();
    collapsed.join(" ").chars().take(72).collect()
}
