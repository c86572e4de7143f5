//! A TCP proxy of the tests' own between clients and one Redis server, which injects network
//! faults on command from the test: latency on every frame, a connection dropped before a
//! request is forwarded (between a script and its `WAIT`), a reply lost after its request ran,
//! a connection reset half-way through a reply, and a blackhole (nothing moves either way) for a
//! while.
//!
//! It reads the Redis protocol (RESP2 and RESP3 frames) in both directions, so a fault aims at
//! one request: the first request whose text contains every word of a rule (case-insensitive)
//! fires it, and Redis answers in order, so the proxy pairs every reply with its request. A
//! replication link (`PSYNC`/`SYNC`, which streams a snapshot that is no frame) is forwarded as
//! raw bytes, with latency and blackholes only. Every connection the proxy closes is reset
//! (`SO_LINGER` 0), as a crashed peer or a middlebox does.
//!
//! The proxy runs on a runtime of its own (one thread), so a test may block its own runtime
//! without stalling it; dropping the proxy stops it and every connection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// What a rule does to the request it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The connection is closed before the request is forwarded: the server never runs it
    /// (e.g. a `WAIT` after its script).
    DropRequest,
    /// The request runs, and the connection is closed instead of delivering its reply.
    DropReply,
    /// The request runs, half of its reply is delivered, then the connection is reset.
    ResetMidReply,
}

/// One armed fault: it fires on the next `times` requests that contain every one of `words`.
struct Rule {
    words: Vec<Vec<u8>>,
    fault: Fault,
    times: u32,
}

#[derive(Default)]
struct Faults {
    latency: Duration,
    blackhole_until: Option<Instant>,
    rules: Vec<Rule>,
    /// How many times a rule fired, for the test to check that its fault happened.
    fired: u32,
    /// Connections accepted so far.
    accepted: u32,
}

type Shared = Arc<Mutex<Faults>>;

/// The proxy: clients connect to `port`, and it connects each one to the server at `upstream`.
pub struct Proxy {
    /// The port clients connect to, on 127.0.0.1.
    pub port: u16,
    faults: Shared,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// A proxy on a free loopback port, forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        Self::start_on(0, upstream)
    }

    /// A proxy on `port` (0: any free one), forwarding to `upstream`.
    ///
    /// # Panics
    /// When `port` cannot be bound.
    pub fn start_on(port: u16, upstream: SocketAddr) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the proxy's runtime");
        let listener = runtime
            .block_on(TcpListener::bind(("127.0.0.1", port)))
            .unwrap_or_else(|e| panic!("binding the proxy on {port}: {e}"));
        let port = listener.local_addr().expect("its address").port();
        let faults = Shared::default();
        runtime.spawn(accept_loop(listener, upstream, faults.clone()));
        Proxy {
            port,
            faults,
            runtime: Some(runtime),
        }
    }

    /// The URL a client uses.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Delays every frame by `latency`, each way, from now on. Counts as one fault fired.
    pub fn set_latency(&self, latency: Duration) {
        let mut f = self.faults.lock().unwrap();
        f.latency = latency;
        f.fired += 1;
    }

    /// Forwards nothing either way for `duration` from now (new connections stall too); what
    /// was sent meanwhile arrives afterwards, as TCP retransmits it once the path heals. Counts
    /// as one fault fired.
    pub fn blackhole(&self, duration: Duration) {
        let mut f = self.faults.lock().unwrap();
        f.blackhole_until = Some(Instant::now() + duration);
        f.fired += 1;
    }

    /// Arms `fault` for the next `times` requests whose text contains every one of `words`
    /// (case-insensitive).
    pub fn arm(&self, words: &[&str], fault: Fault, times: u32) {
        let words = words
            .iter()
            .map(|w| w.to_ascii_lowercase().into_bytes())
            .collect();
        self.faults.lock().unwrap().rules.push(Rule {
            words,
            fault,
            times,
        });
    }

    /// Disarms every rule, ends a blackhole and the latency.
    pub fn heal(&self) {
        let mut f = self.faults.lock().unwrap();
        f.rules.clear();
        f.blackhole_until = None;
        f.latency = Duration::ZERO;
    }

    /// How many times an armed fault fired so far.
    pub fn fired(&self) -> u32 {
        self.faults.lock().unwrap().fired
    }

    /// How many rules still have firings left.
    pub fn armed(&self) -> usize {
        self.faults.lock().unwrap().rules.len()
    }

    /// How many connections the proxy accepted so far.
    pub fn accepted(&self) -> u32 {
        self.faults.lock().unwrap().accepted
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, faults: Shared) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        faults.lock().unwrap().accepted += 1;
        tokio::spawn(serve(client, upstream, faults.clone()));
    }
}

/// What to do with the reply to one forwarded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnReply {
    Deliver,
    Drop,
    Reset,
}

/// The state both directions of one connection share: the replies' fates in request order, and
/// whether the link turned into a raw replication stream.
#[derive(Default)]
struct Link {
    pending: VecDeque<OnReply>,
    raw: bool,
}

async fn serve(client: TcpStream, upstream: SocketAddr, faults: Shared) {
    stall_while_blackholed(&faults).await;
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    // Every close by the proxy is a reset, as from a crashed peer.
    let _ = client.set_zero_linger();
    let _ = server.set_zero_linger();
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let link = Arc::new(Mutex::new(Link::default()));
    let mut requests = tokio::spawn(requests(
        client_read,
        server_write,
        faults.clone(),
        link.clone(),
    ));
    let mut replies = tokio::spawn(replies(server_read, client_write, faults, link));
    // The first direction to end ends the connection: both halves are dropped, both sockets
    // reset.
    tokio::select! {
        _ = &mut requests => replies.abort(),
        _ = &mut replies => requests.abort(),
    }
}

async fn stall_while_blackholed(faults: &Shared) {
    loop {
        let until = faults.lock().unwrap().blackhole_until;
        match until {
            Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
            _ => return,
        }
    }
}

/// Waits out a blackhole, then the latency.
async fn delay(faults: &Shared) {
    stall_while_blackholed(faults).await;
    let latency = faults.lock().unwrap().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

/// The fault the request `frame` fires, if any (counting it).
fn fire(faults: &Shared, frame: &[u8]) -> Option<Fault> {
    let mut f = faults.lock().unwrap();
    if f.rules.is_empty() {
        return None;
    }
    let text = frame.to_ascii_lowercase();
    let hit = f.rules.iter().position(|r| {
        r.words
            .iter()
            .all(|w| text.windows(w.len()).any(|win| win == w.as_slice()))
    })?;
    let fault = f.rules[hit].fault;
    f.rules[hit].times -= 1;
    if f.rules[hit].times == 0 {
        f.rules.remove(hit);
    }
    f.fired += 1;
    Some(fault)
}

/// Client to server, one request frame at a time.
async fn requests(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: Shared,
    link: Arc<Mutex<Link>>,
) {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if link.lock().unwrap().raw {
            delay(&faults).await;
            if to.write_all(&buf).await.is_err() {
                return;
            }
            buf.clear();
            continue;
        }
        while let Some(len) = frame_len(&buf) {
            let frame: Vec<u8> = buf.drain(..len).collect();
            delay(&faults).await;
            let on_reply = match fire(&faults, &frame) {
                Some(Fault::DropRequest) => return,
                Some(Fault::DropReply) => OnReply::Drop,
                Some(Fault::ResetMidReply) => OnReply::Reset,
                None => OnReply::Deliver,
            };
            {
                let mut l = link.lock().unwrap();
                l.pending.push_back(on_reply);
                if is_replication(&frame) {
                    l.raw = true;
                }
            }
            if to.write_all(&frame).await.is_err() {
                return;
            }
            if link.lock().unwrap().raw {
                // What follows the replication handshake is forwarded as it comes.
                if !buf.is_empty() && to.write_all(&buf).await.is_err() {
                    return;
                }
                buf.clear();
                break;
            }
        }
    }
}

/// Whether a request starts a replication stream (after which the server sends raw bytes).
fn is_replication(frame: &[u8]) -> bool {
    let text = frame.to_ascii_lowercase();
    [b"psync".as_slice(), b"\r\nsync\r\n".as_slice()]
        .iter()
        .any(|w| text.windows(w.len()).any(|win| win == *w))
}

/// Server to client, one reply frame at a time, each with the fate its request was given.
async fn replies(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: Shared,
    link: Arc<Mutex<Link>>,
) {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        loop {
            if link.lock().unwrap().raw {
                delay(&faults).await;
                if to.write_all(&buf).await.is_err() {
                    return;
                }
                buf.clear();
                break;
            }
            let Some(len) = frame_len(&buf) else {
                break;
            };
            let frame: Vec<u8> = buf.drain(..len).collect();
            delay(&faults).await;
            let fate = link
                .lock()
                .unwrap()
                .pending
                .pop_front()
                .unwrap_or(OnReply::Deliver);
            match fate {
                OnReply::Deliver => {
                    if to.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                OnReply::Drop => return,
                OnReply::Reset => {
                    let _ = to.write_all(&frame[..frame.len() / 2]).await;
                    let _ = to.flush().await;
                    return;
                }
            }
        }
    }
}

/// The length of the first complete frame in `buf`, or `None` while it is incomplete.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    frame_end(buf, 0, 0)
}

/// Frames nest at most this deep (a hostile or broken stream cannot blow the stack).
const MAX_DEPTH: u32 = 64;

fn frame_end(buf: &[u8], at: usize, depth: u32) -> Option<usize> {
    let kind = *buf.get(at)?;
    let rel = buf[at..].windows(2).position(|w| w == b"\r\n")?;
    let end = at + rel + 2;
    let head = std::str::from_utf8(&buf[at + 1..end - 2]).ok();
    let number = || head.and_then(|h| h.parse::<i64>().ok());
    match kind {
        b'$' | b'!' | b'=' => {
            let n = number()?;
            if n < 0 {
                return Some(end);
            }
            let stop = end + usize::try_from(n).ok()? + 2;
            (buf.len() >= stop).then_some(stop)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' if depth < MAX_DEPTH => {
            let n = number()?;
            if n < 0 {
                return Some(end);
            }
            let items = usize::try_from(n).ok()? * if matches!(kind, b'%' | b'|') { 2 } else { 1 };
            let mut pos = end;
            for _ in 0..items {
                pos = frame_end(buf, pos, depth + 1)?;
            }
            if kind == b'|' {
                // An attribute precedes the value it describes.
                pos = frame_end(buf, pos, depth + 1)?;
            }
            Some(pos)
        }
        // Simple strings, errors, integers, RESP3 scalars, and inline commands: one line.
        _ => Some(end),
    }
}

#[cfg(test)]
mod tests {
    use super::frame_len;

    #[test]
    fn frames_are_found_whole() {
        assert_eq!(frame_len(b"+OK\r\n+OK\r\n"), Some(5));
        assert_eq!(frame_len(b"$3\r\nabc\r\n"), Some(9));
        assert_eq!(frame_len(b"$3\r\nab"), None);
        assert_eq!(frame_len(b"$-1\r\n"), Some(5));
        assert_eq!(frame_len(b"*2\r\n:1\r\n$1\r\nx\r\n"), Some(15));
        assert_eq!(frame_len(b"*2\r\n:1\r\n"), None);
        assert_eq!(frame_len(b"%1\r\n+a\r\n:1\r\n"), Some(12));
        assert_eq!(frame_len(b"PING\r\n"), Some(6));
        assert_eq!(frame_len(b"*1\r\n*1\r\n*0\r\n"), Some(12));
        assert_eq!(frame_len(b"$x\r\n"), None);
    }
}
