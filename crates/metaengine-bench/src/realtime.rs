//! The realtime benchmark (`--realtime`, issue 15): 1,000 SSE subscribers over 10 tenants (100
//! each, all reading every change of their tenant) while 500 creates per second are spread over
//! the tenants, so each change is delivered 100 times (50,000 events per second).
//!
//! Measured per server, in this order:
//! - **memory per idle subscriber**: the server's RSS growth from 500 to 1,000 open, quiet
//!   streams, over 500;
//! - **write-to-receive delay**, p50 and p99: each record carries the time its create was sent
//!   (`t`, µs since the epoch); a subscriber takes the difference when the event arrives. It
//!   includes the create's own latency (reported beside it), so it bounds commit-to-receive
//!   from above;
//! - **CPU per delivered event**: the server's CPU time (and PostgreSQL's) over the paced run,
//!   over the events the subscribers received;
//! - **write throughput with the feed busy**: creates per second at full speed (32 writers)
//!   with the 1,000 subscribers receiving, then with none, each for a few seconds.
//!
//! The limit is a hand-written server (`metaengine-bench broadcast`): axum, one tokio
//! `broadcast` channel per tenant, the create answered and sent to the tenant's subscribers
//! without any database. The engine does everything else besides: the write, its audit row,
//! the change log in the same transaction, reading the log back, and each subscriber's policy.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::{Mutex, broadcast};

use crate::load;
use crate::procs::Server;

/// Tenants of the benchmark.
pub const TENANTS: usize = 10;
/// Subscribers per tenant.
pub const SUBSCRIBERS_PER_TENANT: usize = 100;
/// Creates per second of the paced run.
pub const WRITES_PER_SECOND: u64 = 500;
/// Seconds of the paced run.
pub const PACED_SECONDS: u64 = 10;
/// Seconds of each full-speed write run.
pub const BURST_SECONDS: f64 = 5.0;
/// Concurrent writers of the full-speed runs.
pub const BURST_WRITERS: usize = 32;

/// The benchmark's entity: a number and the send time of its create.
pub fn doc_schema() -> String {
    serde_json::json!({
        "fields": [
            { "name": "n", "type": "integer" },
            { "name": "t", "type": "integer" }
        ],
        "policies": [{ "name": "everyone-reads", "effect": "allow", "action": "read" },
                     { "name": "admins", "effect": "allow", "action": "*",
                       "conditions": [{ "field": "user.role", "operator": "eq", "value": "admin" }] }]
    })
    .to_string()
}

/// The tenant ids.
pub fn tenants() -> Vec<String> {
    (1..=TENANTS).map(|i| format!("rt{i:02}")).collect()
}

fn now_micros() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0)
}

/// What one server measured.
#[derive(Debug, Clone, Serialize)]
pub struct RealtimeRun {
    /// `engine (postgres)`, `engine (sqlite)`, `broadcast limit`.
    pub server: String,
    /// Subscribers that opened their stream.
    pub subscribers: usize,
    /// RSS growth per open, idle subscriber, in bytes.
    pub bytes_per_idle_subscriber: f64,
    /// Creates sent in the paced run, and per second.
    pub writes: u64,
    /// Achieved creates per second in the paced run.
    pub writes_per_second: f64,
    /// Events received over the events expected (writes × subscribers per tenant).
    pub delivered: u64,
    /// Events expected.
    pub expected: u64,
    /// Write-to-receive delay, milliseconds.
    pub delay_p50_ms: f64,
    /// Write-to-receive delay, milliseconds.
    pub delay_p99_ms: f64,
    /// Write-to-receive delay, milliseconds.
    pub delay_max_ms: f64,
    /// The creates' own latency, milliseconds.
    pub write_p50_ms: f64,
    /// The creates' own latency, milliseconds.
    pub write_p99_ms: f64,
    /// Server CPU per delivered event, microseconds.
    pub server_cpu_us_per_event: f64,
    /// PostgreSQL's CPU per delivered event, microseconds (0 elsewhere).
    pub postgres_cpu_us_per_event: f64,
    /// Full-speed creates per second with the subscribers receiving.
    pub burst_with_subscribers: f64,
    /// Full-speed creates per second with no subscriber.
    pub burst_without_subscribers: f64,
}

/// Shared by the subscribers of one run.
struct Receivers {
    delays: std::sync::Mutex<Histogram<u64>>,
    received: AtomicU64,
    connected: AtomicU64,
}

/// Opens one SSE stream and records the delay of each event until the connection closes.
async fn subscriber(addr: SocketAddr, token: String, shared: Arc<Receivers>) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "GET /api/realtime?entities=Doc HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut lines = BufReader::new(stream).lines();
    let status = lines.next_line().await?.unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        bail!("the stream answered `{status}`");
    }
    shared.connected.fetch_add(1, Ordering::Relaxed);
    while let Some(line) = lines.next_line().await? {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        // The send time: `"t":<digits>` in the record, read without parsing the whole event.
        let Some(at) = data.find("\"t\":") else {
            continue;
        };
        let digits: String = data
            .get(at + 4..)
            .unwrap_or_default()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(t) = digits.parse::<u64>() {
            let delay = now_micros().saturating_sub(t).max(1);
            let _ = shared
                .delays
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(delay);
            shared.received.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// One create of record `n`; its latency.
async fn create(addr: SocketAddr, token: &str, n: u64) -> anyhow::Result<Duration> {
    let body = serde_json::json!({ "n": n, "t": now_micros() });
    let start = Instant::now();
    let (status, answer) = load::send(addr, Some(token), "/api/data/Doc", Some(&body))
        .await
        .map_err(anyhow::Error::msg)?;
    if status != 201 {
        bail!(
            "a create answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(start.elapsed())
}

/// Creates at full speed with [`BURST_WRITERS`] writers for [`BURST_SECONDS`]; creates per
/// second.
async fn burst(addr: SocketAddr, tokens: &[String]) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs_f64(BURST_SECONDS);
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..BURST_WRITERS {
        let token = tokens.iter().cycle().nth(w).cloned().unwrap_or_default();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                create(addr, &token, n).await?;
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let start = Instant::now();
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Runs the benchmark against `server` (already started, the entity active, the tenants
/// created); `tokens` holds one admin token per tenant. `postgres` says whether to count
/// PostgreSQL's CPU.
pub async fn measure(
    label: &str,
    server: &Server,
    tokens: &[String],
    postgres: bool,
) -> anyhow::Result<RealtimeRun> {
    let addr = server.addr;
    let shared = Arc::new(Receivers {
        delays: std::sync::Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        received: AtomicU64::new(0),
        connected: AtomicU64::new(0),
    });
    // Warm the server up (its first create compiles the model, opens connections).
    for token in tokens {
        create(addr, token, 0).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Subscribers open in two halves; the memory of one is the RSS growth of the second half
    // over its size, so one-time costs of the first streams (buffers, caches warming up) do not
    // count as per-subscriber memory.
    let total = tokens.len() * SUBSCRIBERS_PER_TENANT;
    let mut streams = Vec::new();
    let mut rss = Vec::new();
    for half in 0..2 {
        for (i, token) in tokens.iter().enumerate() {
            for _ in 0..SUBSCRIBERS_PER_TENANT / 2 {
                let shared = shared.clone();
                let token = token.clone();
                streams.push(tokio::spawn(async move {
                    if let Err(e) = subscriber(addr, token, shared).await {
                        eprintln!("tenant {i}: a subscriber failed: {e:#}");
                    }
                }));
            }
        }
        let want = (total / 2 * (half + 1)) as u64;
        let deadline = Instant::now() + Duration::from_secs(30);
        while shared.connected.load(Ordering::Relaxed) < want {
            if Instant::now() > deadline {
                bail!(
                    "{label}: only {} of {want} subscribers connected",
                    shared.connected.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        rss.push(server.rss_kib().unwrap_or(0));
    }
    let grown = rss
        .get(1)
        .copied()
        .unwrap_or(0)
        .saturating_sub(rss.first().copied().unwrap_or(0));
    let per_subscriber = (grown * 1024) as f64 / (total / 2) as f64;

    // The paced run: one create every 2 ms, round robin over the tenants.
    let cpu_before = server.cpu_seconds().unwrap_or(0.0);
    let pg_before = if postgres {
        crate::procs::postgres_cpu_seconds()
    } else {
        0.0
    };
    let received_before = shared.received.load(Ordering::Relaxed);
    let writes = WRITES_PER_SECOND * PACED_SECONDS;
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / WRITES_PER_SECOND));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let paced_start = Instant::now();
    let mut writers = Vec::with_capacity(usize::try_from(writes).unwrap_or(0));
    for n in 0..writes {
        tick.tick().await;
        let token = tokens
            .get(usize::try_from(n).unwrap_or(0) % tokens.len().max(1))
            .cloned()
            .unwrap_or_default();
        let latencies = latencies.clone();
        writers.push(tokio::spawn(async move {
            let took = create(addr, &token, n).await?;
            let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            let _ = latencies.lock().await.record(micros.max(1));
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    let paced = paced_start.elapsed().as_secs_f64();
    // Let the last events arrive.
    let expected = writes * SUBSCRIBERS_PER_TENANT as u64;
    let settle = Instant::now() + Duration::from_secs(10);
    while shared.received.load(Ordering::Relaxed) - received_before < expected
        && Instant::now() < settle
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = server.cpu_seconds().unwrap_or(0.0) - cpu_before;
    let pg_cpu = if postgres {
        crate::procs::postgres_cpu_seconds() - pg_before
    } else {
        0.0
    };
    let delivered = shared.received.load(Ordering::Relaxed) - received_before;
    let delays = shared
        .delays
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let write_latency = latencies.lock().await.clone();

    let burst_with = burst(addr, tokens).await?;
    for s in &streams {
        s.abort();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let burst_without = burst(addr, tokens).await?;

    let per_event = |seconds: f64| {
        if delivered == 0 {
            0.0
        } else {
            seconds * 1e6 / delivered as f64
        }
    };
    Ok(RealtimeRun {
        server: label.to_owned(),
        subscribers: total,
        bytes_per_idle_subscriber: per_subscriber,
        writes,
        writes_per_second: writes as f64 / paced,
        delivered,
        expected,
        delay_p50_ms: ms(&delays, 0.5),
        delay_p99_ms: ms(&delays, 0.99),
        delay_max_ms: ms(&delays, 1.0),
        write_p50_ms: ms(&write_latency, 0.5),
        write_p99_ms: ms(&write_latency, 0.99),
        server_cpu_us_per_event: per_event(cpu),
        postgres_cpu_us_per_event: per_event(pg_cpu),
        burst_with_subscribers: burst_with,
        burst_without_subscribers: burst_without,
    })
}

/// Prints the runs as a table.
pub fn print(runs: &[RealtimeRun]) {
    println!(
        "\n{:<20} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>11} {:>11}",
        "realtime",
        "B/idle",
        "delivered",
        "p50 ms",
        "p99 ms",
        "max ms",
        "write p50",
        "write p99",
        "cpu µs/ev",
        "pg µs/ev",
        "burst+subs",
        "burst-subs"
    );
    for r in runs {
        println!(
            "{:<20} {:>9.0} {:>9.1}% {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.2} {:>9.2} {:>11.0} {:>11.0}",
            r.server,
            r.bytes_per_idle_subscriber,
            100.0 * r.delivered as f64 / r.expected.max(1) as f64,
            r.delay_p50_ms,
            r.delay_p99_ms,
            r.delay_max_ms,
            r.write_p50_ms,
            r.write_p99_ms,
            r.server_cpu_us_per_event,
            r.postgres_cpu_us_per_event,
            r.burst_with_subscribers,
            r.burst_without_subscribers
        );
    }
}

// ---- the limit: a hand-written broadcast server ----

#[derive(Clone)]
struct Limit {
    secret: Arc<jsonwebtoken::DecodingKey>,
    channels: Arc<std::sync::Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>>,
}

impl Limit {
    fn tenant(&self, headers: &HeaderMap) -> Option<String> {
        let token = headers
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        let data = jsonwebtoken::decode::<serde_json::Value>(
            token,
            &self.secret,
            &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
        )
        .ok()?;
        data.claims
            .get("tenant_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    }

    fn channel(&self, tenant: &str) -> broadcast::Sender<Arc<str>> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        channels
            .entry(tenant.to_owned())
            .or_insert_with(|| broadcast::channel(1024).0)
            .clone()
    }
}

async fn limit_create(State(s): State<Limit>, headers: HeaderMap, body: String) -> Response {
    let Some(tenant) = s.tenant(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(serde_json::Value::Object(mut record)) = serde_json::from_str(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let id = uuid::Uuid::now_v7().to_string();
    record.insert("id".into(), id.clone().into());
    let record = serde_json::Value::Object(record).to_string();
    let data =
        format!("{{\"entity\":\"Doc\",\"id\":\"{id}\",\"rowVersion\":1,\"record\":{record}}}");
    let _ = s.channel(&tenant).send(Arc::from(data));
    (StatusCode::CREATED, record).into_response()
}

async fn limit_stream(State(s): State<Limit>, headers: HeaderMap) -> Response {
    let Some(tenant) = s.tenant(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let receiver = s.channel(&tenant).subscribe();
    let ids = AtomicU64::new(0);
    let events = tokio_stream_of(receiver).map(move |data| {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        Ok::<_, Infallible>(
            Event::default()
                .id(id.to_string())
                .event("create")
                .data(&*data),
        )
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A broadcast receiver as a stream (lagged messages skipped, as a slow SSE client would).
fn tokio_stream_of(
    receiver: broadcast::Receiver<Arc<str>>,
) -> impl futures_util::Stream<Item = Arc<str>> {
    futures_util::stream::unfold(receiver, |mut r| async move {
        loop {
            match r.recv().await {
                Ok(data) => return Some((data, r)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// Serves the limit on `listen` (the harness starts it; secret from METAENGINE_JWT_SECRET).
pub async fn serve_limit(listen: &str) -> anyhow::Result<()> {
    let secret = std::env::var("METAENGINE_JWT_SECRET").context("METAENGINE_JWT_SECRET")?;
    let state = Limit {
        secret: Arc::new(jsonwebtoken::DecodingKey::from_secret(secret.as_bytes())),
        channels: Arc::default(),
    };
    let app = Router::new()
        .route("/api/data/Doc", post(limit_create))
        .route("/api/realtime", get(limit_stream))
        .route("/ready", get(|| async { "{}" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
