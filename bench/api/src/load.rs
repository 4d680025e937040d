//! The load tool: the same one for every server in a run. HTTP/1.1 keep-alive connections
//! (hyper), each sending its next request when the last one's body has been read.
//!
//! - [`closed`]: `conns` connections as fast as the server answers (what `wrk -c16` does);
//!   latency from sending to the last byte of the answer.
//! - [`fixed_rate`]: requests scheduled at a fixed rate whatever the server does; latency is
//!   counted from the moment a request was due, so a stall shows in the figures instead of
//!   slowing the load down (the correction wrk2 makes).

use anyhow::{Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// One request to send: method, path and query, body (for POST).
#[derive(Clone, Debug)]
pub struct Req {
    pub method: hyper::Method,
    pub path: String,
    pub body: Option<Bytes>,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Self {
        Req {
            method: hyper::Method::GET,
            path: path.into(),
            body: None,
        }
    }

    pub fn post(path: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Req {
            method: hyper::Method::POST,
            path: path.into(),
            body: Some(body.into()),
        }
    }
}

/// Where to send: `host:port`, the bearer token (none for the peer), and the server's
/// process, whose CPU time a measurement reads.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: String,
    pub token: Option<String>,
    pub pid: Option<u32>,
}

/// The CPU time (user and system) a process has used so far, from `/proc` (Linux).
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = procfs::process::Process::new(pid as i32)
        .ok()?
        .stat()
        .ok()?;
    let ticks = stat.utime + stat.stime;
    Some(Duration::from_secs_f64(
        ticks as f64 / procfs::ticks_per_second() as f64,
    ))
}

/// Reads the server's CPU time at `at`, in a task of its own.
fn cpu_at(target: &Target, at: Instant) -> Option<tokio::task::JoinHandle<Option<Duration>>> {
    let pid = target.pid?;
    Some(tokio::spawn(async move {
        tokio::time::sleep_until(at.into()).await;
        process_cpu(pid)
    }))
}

/// The CPU time the server used between the reading `from` and now.
async fn cpu_since(
    target: &Target,
    from: Option<tokio::task::JoinHandle<Option<Duration>>>,
) -> Option<Duration> {
    let from = from?.await.ok()??;
    Some(process_cpu(target.pid?)?.saturating_sub(from))
}

/// What a run measured.
#[derive(Debug)]
pub struct Stats {
    /// Latency in microseconds of every answered request (2xx or not).
    pub latency: Histogram<u64>,
    pub ok: u64,
    /// Answers other than 2xx, and requests that failed (connection closed, refused).
    pub errors: u64,
    /// The first error seen, to say what went wrong.
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// The CPU time the server's process used while it was measured (its own process only:
    /// not a PostgreSQL server's). On a shared machine it moves less than the rate does.
    pub server_cpu: Option<Duration>,
}

impl Stats {
    fn new() -> Self {
        Stats {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            server_cpu: None,
        }
    }

    fn merge(&mut self, other: Stats) {
        self.latency.add(&other.latency).expect("same bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The server's CPU time per answered request, in microseconds.
    pub fn cpu_per_request(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (self.ok > 0).then(|| cpu.as_secs_f64() * 1e6 / self.ok as f64)
    }

    /// A percentile in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(&target.addr)
        .await
        .with_context(|| format!("connecting to {}", target.addr))?;
    stream.set_nodelay(true)?;
    let (send, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// The HTTP request for `req` on `target`: its token, and a FHIR body if it has one.
fn request(target: &Target, req: &Req) -> Result<hyper::Request<Full<Bytes>>, hyper::http::Error> {
    let mut builder = hyper::Request::builder()
        .method(req.method.clone())
        .uri(&req.path)
        .header(hyper::header::HOST, &target.addr)
        .header(hyper::header::ACCEPT, "application/fhir+json");
    if let Some(token) = &target.token {
        builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if req.body.is_some() {
        builder = builder.header(hyper::header::CONTENT_TYPE, "application/fhir+json");
    }
    builder.body(Full::new(req.body.clone().unwrap_or_default()))
}

/// Sends one request on `send` and reads the whole answer: its status, or what failed.
async fn exchange(
    send: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    req: &Req,
) -> Result<u16, String> {
    let request = request(target, req).map_err(|e| e.to_string())?;
    send.ready().await.map_err(|e| e.to_string())?;
    let response = send
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(format!(
            "{status} {}",
            String::from_utf8_lossy(&body.to_bytes())
                .chars()
                .take(300)
                .collect::<String>()
        ))
    }
}

/// Records one exchange in `stats` (latency counted from `from`); a failed connection is
/// opened again.
async fn record(
    stats: &mut Stats,
    send: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    req: &Req,
    from: Instant,
    counted: bool,
) -> Result<()> {
    let result = exchange(send, target, req).await;
    let micros = from.elapsed().as_micros().max(1) as u64;
    if counted {
        stats.latency.saturating_record(micros);
        match &result {
            Ok(_) => stats.ok += 1,
            Err(e) => {
                stats.errors += 1;
                stats.first_error.get_or_insert_with(|| e.clone());
            }
        }
    }
    if result.is_err() && send.is_closed() {
        *send = connect(target).await?;
    }
    Ok(())
}

/// Opens `conns` connections to `target`, runs `work` on each in a task of its own (with the
/// count of requests they share), and adds up what they measured.
async fn on_connections<F, W>(target: &Target, conns: usize, work: F) -> Result<Stats>
where
    F: Fn(SendRequest<Full<Bytes>>, Target, Arc<AtomicU64>) -> W,
    W: std::future::Future<Output = Result<Stats>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let mut sends = Vec::with_capacity(conns);
    for _ in 0..conns {
        sends.push(connect(target).await?);
    }
    let workers: Vec<_> = sends
        .into_iter()
        .map(|send| tokio::spawn(work(send, target.clone(), next.clone())))
        .collect();
    let mut total = Stats::new();
    for w in workers {
        total.merge(w.await??);
    }
    Ok(total)
}

/// `conns` connections, each sending `pick(n)` for the n-th request it sends, as fast as the
/// answers come, for `warm_up` (not counted) and then `duration`.
pub async fn closed(
    target: &Target,
    conns: usize,
    warm_up: Duration,
    duration: Duration,
    pick: Arc<dyn Fn(u64) -> Req + Send + Sync>,
) -> Result<Stats> {
    let start = Instant::now();
    let counting = start + warm_up;
    let end = counting + duration;
    let cpu_from = cpu_at(target, counting);
    let mut total = on_connections(target, conns, |mut send, target, next| {
        let pick = pick.clone();
        async move {
            let mut stats = Stats::new();
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let req = pick(next.fetch_add(1, Ordering::Relaxed));
                record(&mut stats, &mut send, &target, &req, now, now >= counting).await?;
            }
            Ok(stats)
        }
    })
    .await?;
    total.elapsed = end.saturating_duration_since(counting);
    total.server_cpu = cpu_since(target, cpu_from).await;
    Ok(total)
}

/// `rate` requests a second for `duration`, request n being `pick(n)`, spread over up to
/// `conns` connections; latency from the moment each was due.
pub async fn fixed_rate(
    target: &Target,
    conns: usize,
    rate: f64,
    duration: Duration,
    pick: Arc<dyn Fn(u64) -> Req + Send + Sync>,
) -> Result<Stats> {
    let total_requests = (rate * duration.as_secs_f64()) as u64;
    // Counted from after the connections are open (they take less than this).
    let start = Instant::now() + Duration::from_millis(50 + 5 * conns as u64);
    // A server that falls more than 10 s behind is not waited for: what was not sent by then
    // is counted as failed.
    let give_up = start + duration + Duration::from_secs(10);
    let cpu_from = cpu_at(target, start);
    let mut total = on_connections(target, conns, |mut send, target, next| {
        let pick = pick.clone();
        async move {
            let mut stats = Stats::new();
            loop {
                if Instant::now() > give_up {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total_requests {
                    break;
                }
                let due = start + Duration::from_secs_f64(n as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let req = pick(n);
                record(&mut stats, &mut send, &target, &req, due, true).await?;
            }
            Ok(stats)
        }
    })
    .await?;
    let unsent = total_requests.saturating_sub(total.ok + total.errors);
    if unsent > 0 {
        total.errors += unsent;
        total.first_error.get_or_insert_with(|| {
            format!("{unsent} requests not sent: the server fell more than 10 s behind")
        });
    }
    total.elapsed = start.elapsed();
    total.server_cpu = cpu_since(target, cpu_from).await;
    Ok(total)
}

/// One request outside a measurement: its status and body.
pub async fn once(target: &Target, req: &Req) -> Result<(u16, Bytes)> {
    let mut send = connect(target).await?;
    let response = send.send_request(request(target, req)?).await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}
