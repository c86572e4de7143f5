//! Hold + confirm + cancel cycles a second: through a gate's booking API over HTTP, or on the
//! same durable book in this process, with the same number of concurrent clients.
//!
//! ```text
//! api_cycles --addr 127.0.0.1:8080 --token-file service.token [--clients 64] [--seconds 10]
//! api_cycles --in-process DIR [--clients 64] [--seconds 10]
//! ```
//!
//! Each client runs cycles of its own applicants (one per cycle, so no applicant limit is
//! hit) on branch 1, slot `client`, opened with room for every cycle. Prints cycles/s and
//! the median and 99th percentile of one cycle's time. `gate/bench/vs_nginx.sh` runs both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use surgegate::{ApplicantId, BranchId, SlotBook};

struct Args {
    addr: Option<String>,
    token: String,
    dir: Option<String>,
    clients: u32,
    seconds: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        addr: None,
        token: String::new(),
        dir: None,
        clients: 64,
        seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = Some(value()?),
            "--token-file" => {
                let path = value()?;
                a.token = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{path}: {e}"))?
                    .trim()
                    .to_owned();
            }
            "--in-process" => a.dir = Some(value()?),
            "--clients" => a.clients = value()?.parse().map_err(|_| "--clients N")?,
            "--seconds" => a.seconds = value()?.parse().map_err(|_| "--seconds N")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.addr.is_none() == a.dir.is_none() {
        return Err("give --addr ADDR --token-file FILE, or --in-process DIR".into());
    }
    Ok(a)
}

/// Cycle times of every client, merged: count, median, 99th percentile.
fn report(what: &str, mut times: Vec<Duration>, took: Duration) {
    times.sort_unstable();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{what}: {} cycles in {:.1} s = {:.0} cycles/s, p50 {:.2} ms, p99 {:.2} ms",
        times.len(),
        took.as_secs_f64(),
        times.len() as f64 / took.as_secs_f64(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn call(
    sender: &mut Sender,
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
    body: String,
) -> Result<(u16, serde_json::Value), String> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    // The connection takes the next request only once it has finished with the last one.
    sender
        .ready()
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?
    };
    Ok((status, value))
}

async fn connect(addr: &str) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("a connection to the gate failed: {e}");
        }
    });
    Ok(sender)
}

async fn http_client(
    addr: Arc<str>,
    token: Arc<str>,
    client: u32,
    until: Instant,
) -> Result<Vec<Duration>, String> {
    let mut s = connect(&addr).await?;
    let mut times = Vec::new();
    let mut n = 0u64;
    while Instant::now() < until {
        let started = Instant::now();
        let applicant = u64::from(client) << 40 | n;
        let hold = format!(r#"{{"branch":1,"slot":{client},"applicant":{applicant}}}"#);
        let (st, h) = call(&mut s, &addr, &token, "POST", "/v1/holds", hold).await?;
        let t = h["token"]
            .as_str()
            .ok_or(format!("hold: {st} {h}"))?
            .to_owned();
        let (st, b) = call(
            &mut s,
            &addr,
            &token,
            "POST",
            &format!("/v1/holds/{t}/confirm"),
            String::new(),
        )
        .await?;
        if st != 200 {
            return Err(format!("confirm: {st} {b}"));
        }
        let (st, b) = call(
            &mut s,
            &addr,
            &token,
            "DELETE",
            &format!("/v1/bookings/{t}"),
            String::new(),
        )
        .await?;
        if st != 204 {
            return Err(format!("cancel: {st} {b}"));
        }
        times.push(started.elapsed());
        n += 1;
    }
    Ok(times)
}

async fn over_http(a: &Args) -> Result<(), String> {
    let addr: Arc<str> = a.addr.clone().unwrap_or_default().into();
    let token: Arc<str> = a.token.clone().into();
    let mut s = connect(&addr).await?;
    for slot in 0..a.clients {
        let (st, b) = call(
            &mut s,
            &addr,
            &token,
            "PUT",
            &format!("/v1/branches/1/slots/{slot}"),
            r#"{"capacity":100000}"#.into(),
        )
        .await?;
        if st != 200 {
            return Err(format!("opening slot {slot}: {st} {b}"));
        }
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(a.seconds);
    let tasks: Vec<_> = (0..a.clients)
        .map(|c| tokio::spawn(http_client(addr.clone(), token.clone(), c, until)))
        .collect();
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await.map_err(|e| e.to_string())??);
    }
    report(
        &format!("booking API over HTTP, {} connections", a.clients),
        times,
        started.elapsed(),
    );
    Ok(())
}

fn in_process(a: &Args) -> Result<(), String> {
    let dir = a.dir.clone().unwrap_or_default();
    let book = Arc::new(
        SlotBook::builder()
            .hold_ttl(Duration::from_secs(300))
            .open(&dir)
            .map_err(|e| format!("{dir}: {e}"))?,
    );
    for slot in 0..a.clients {
        book.set_capacity(BranchId(1), slot, 100_000)
            .map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(a.seconds);
    let threads: Vec<_> = (0..a.clients)
        .map(|client| {
            let book = book.clone();
            std::thread::spawn(move || -> Result<Vec<Duration>, String> {
                let mut times = Vec::new();
                let mut n = 0u64;
                while Instant::now() < until {
                    let t0 = Instant::now();
                    let applicant = ApplicantId(u64::from(client) << 40 | n);
                    let hold = book
                        .reserve(BranchId(1), client, applicant)
                        .map_err(|e| e.to_string())?;
                    book.confirm(hold.token).map_err(|e| e.to_string())?;
                    book.release(hold.token).map_err(|e| e.to_string())?;
                    times.push(t0.elapsed());
                    n += 1;
                }
                Ok(times)
            })
        })
        .collect();
    let mut times = Vec::new();
    for t in threads {
        times.extend(t.join().map_err(|_| "a client thread panicked")??);
    }
    report(
        &format!("durable book in process, {} threads", a.clients),
        times,
        started.elapsed(),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = args()?;
    if a.dir.is_some() {
        in_process(&a)
    } else {
        over_http(&a).await
    }
}
