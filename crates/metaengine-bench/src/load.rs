//! The load generator: N keep-alive HTTP/1.1 connections, each sending one request at a time in a
//! loop (closed loop), a warm-up that is not recorded, then a measured window whose latencies go
//! into an HDR histogram (microseconds, 3 significant digits). Every response must be a 200 with a
//! JSON body (a 201 for a create); anything else counts as an error (and a broken connection is
//! re-opened).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Largest latency recorded: one minute, in microseconds.
const MAX_LATENCY_US: u64 = 60_000_000;

/// What each request asks.
#[derive(Debug, Clone)]
pub enum Workload {
    /// `GET {prefix}/{id}`, ids drawn at random (a fixed seed per connection) from `ids`.
    Get {
        /// `/api/data/Invoice`.
        prefix: String,
        /// The ids of the benchmarked tenant and realm.
        ids: Arc<Vec<String>>,
    },
    /// The same path every time.
    Fixed {
        /// Path and query.
        path: String,
    },
    /// `POST /api/data/Invoice` of one new invoice, a fresh invoice number every time.
    Create {
        /// Makes the invoice numbers of this run unique (one per side and round).
        tag: String,
    },
    /// `POST /api/data/batch` of `size` new invoices.
    Batch {
        /// As for [`Workload::Create`].
        tag: String,
        /// Creates per request.
        size: usize,
    },
}

/// The request body of invoice `seq` of connection `conn`: invoice number `{tag}-{conn}-{seq}`.
pub fn new_invoice(tag: &str, conn: usize, seq: u64) -> serde_json::Value {
    let mix = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (conn as u64);
    let status = ["draft", "sent", "paid"]
        .get(usize::try_from(mix % 3).unwrap_or(0))
        .copied()
        .unwrap_or("draft");
    serde_json::json!({
        "invoiceNumber": format!("{tag}-{conn}-{seq}"),
        "customerId": format!("CUST-{:05}", mix % 20_000),
        "totalAmount": format!("{}.{:02}", (mix >> 8) % 100_000, (mix >> 32) % 100),
        "status": status,
        "dueDate": format!("2026-{:02}-{:02}", 1 + (mix >> 40) % 12, 1 + (mix >> 48) % 28),
    })
}

/// The body of a batch of `size` creates (SPEC §7).
pub fn batch_body(tag: &str, conn: usize, first: u64, size: usize) -> serde_json::Value {
    let operations: Vec<serde_json::Value> = (first..first + size as u64)
        .map(|seq| {
            serde_json::json!({
                "op": "create", "entity": "Invoice", "record": new_invoice(tag, conn, seq)
            })
        })
        .collect();
    serde_json::json!({ "operations": operations })
}

/// A run's shape.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    /// Concurrent connections.
    pub connections: usize,
    /// Not recorded.
    pub warmup: Duration,
    /// Recorded.
    pub duration: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Requests answered 200 within the measured window.
    pub ok: u64,
    /// Requests that failed (non-200, bad body, broken connection) within the window.
    pub errors: u64,
    /// From the start of the window to the last measured answer.
    pub elapsed: Duration,
    /// Latencies of the measured requests (successful or not), in microseconds.
    pub histogram: Histogram<u64>,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
}

impl RunResult {
    /// Successful requests per second.
    pub fn rps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }
}

/// xorshift64*: the id picker (cheap, deterministic, no shared state).
#[derive(Debug, Clone)]
pub struct Picker(u64);

impl Picker {
    /// A picker seeded for connection `n` (never zero).
    pub fn new(n: u64) -> Picker {
        Picker(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// An index below `len`.
    pub fn next_index(&mut self, len: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        usize::try_from(r % u64::try_from(len.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

async fn connect(addr: SocketAddr) -> Result<Conn, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Conn { sender })
}

/// One request on `conn` (a POST of `body` when there is one): Ok(()) for a 200 or 201 with a
/// JSON body.
async fn request(
    conn: &mut Conn,
    host: &str,
    token: &str,
    path: &str,
    body: Option<Bytes>,
) -> Result<(), String> {
    conn.sender.ready().await.map_err(|e| e.to_string())?;
    let method = if body.is_some() {
        Method::POST
    } else {
        Method::GET
    };
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::AUTHORIZATION, token)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| e.to_string())?;
    let res = conn
        .sender
        .send_request(req)
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status != hyper::StatusCode::OK && status != hyper::StatusCode::CREATED {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(body.get(..200).unwrap_or(&body))
        ));
    }
    if body.first() != Some(&b'{') {
        return Err("the body is not a JSON object".to_owned());
    }
    Ok(())
}

/// One `GET path` on a fresh connection (with a bearer token if given): status and body.
pub async fn fetch(
    addr: SocketAddr,
    token: Option<&str>,
    path: &str,
) -> Result<(u16, Bytes), String> {
    send(addr, token, path, None).await
}

/// One request on a fresh connection, a `POST` of `body` when there is one: status and body.
pub async fn send(
    addr: SocketAddr,
    token: Option<&str>,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, Bytes), String> {
    let mut conn = connect(addr).await?;
    conn.sender.ready().await.map_err(|e| e.to_string())?;
    let method = if body.is_some() {
        Method::POST
    } else {
        Method::GET
    };
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    let res = conn
        .sender
        .send_request(req)
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

struct ConnOutcome {
    ok: u64,
    errors: u64,
    last: Option<Instant>,
    histogram: Histogram<u64>,
    first_error: Option<String>,
}

async fn drive(
    n: usize,
    addr: SocketAddr,
    token: Arc<String>,
    workload: Workload,
    spec: LoadSpec,
    barrier: Arc<Barrier>,
    start: Arc<tokio::sync::OnceCell<Instant>>,
) -> Result<ConnOutcome, String> {
    let host = addr.to_string();
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).map_err(|e| e.to_string())?;
    let mut conn = connect(addr).await;
    barrier.wait().await;
    let start = *start.get_or_init(|| async { Instant::now() }).await;
    let measure_from = start + spec.warmup;
    let until = measure_from + spec.duration;
    let mut picker = Picker::new(u64::try_from(n).unwrap_or(0) + 1);
    let mut out = ConnOutcome {
        ok: 0,
        errors: 0,
        last: None,
        histogram: Histogram::new(3).map_err(|e| e.to_string())?,
        first_error: None,
    };
    let mut path = String::with_capacity(128);
    let mut seq = 0_u64;
    loop {
        // A write's body is built before its clock starts.
        path.clear();
        let body = match &workload {
            Workload::Get { prefix, ids } => {
                path.push_str(prefix);
                path.push('/');
                if let Some(id) = ids.get(picker.next_index(ids.len())) {
                    path.push_str(id);
                }
                None
            }
            Workload::Fixed { path: p } => {
                path.push_str(p);
                None
            }
            Workload::Create { tag } => {
                path.push_str("/api/data/Invoice");
                seq += 1;
                Some(Bytes::from(new_invoice(tag, n, seq).to_string()))
            }
            Workload::Batch { tag, size } => {
                path.push_str("/api/data/batch");
                let first = seq;
                seq += *size as u64;
                Some(Bytes::from(batch_body(tag, n, first, *size).to_string()))
            }
        };
        let sent = Instant::now();
        if sent >= until {
            break;
        }
        let result = match &mut conn {
            Ok(c) => request(c, &host, &token, &path, body).await,
            Err(e) => Err(e.clone()),
        };
        let done = Instant::now();
        let measured = sent >= measure_from;
        if measured {
            let us = u64::try_from(done.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
            histogram.saturating_record(us.clamp(1, MAX_LATENCY_US));
            out.last = Some(done);
        }
        match result {
            Ok(()) => {
                if measured {
                    out.ok += 1;
                }
            }
            Err(e) => {
                if measured {
                    out.errors += 1;
                    out.first_error.get_or_insert(e);
                }
                // A connection that broke is replaced; a refused one is retried a bit later.
                if conn.as_ref().map_or(true, |c| c.sender.is_closed()) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    conn = connect(addr).await;
                }
            }
        }
    }
    out.histogram = histogram;
    Ok(out)
}

/// Runs `workload` against `addr` with the bearer `token`.
pub async fn run(
    addr: SocketAddr,
    token: &str,
    workload: &Workload,
    spec: LoadSpec,
) -> anyhow::Result<RunResult> {
    let connections = spec.connections.max(1);
    let barrier = Arc::new(Barrier::new(connections));
    let start = Arc::new(tokio::sync::OnceCell::new());
    let token = Arc::new(format!("Bearer {token}"));
    let mut tasks = Vec::with_capacity(connections);
    for n in 0..connections {
        tasks.push(tokio::spawn(drive(
            n,
            addr,
            token.clone(),
            workload.clone(),
            spec,
            barrier.clone(),
            start.clone(),
        )));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)?;
    let (mut ok, mut errors, mut last, mut first_error) = (0, 0, None::<Instant>, None);
    for task in tasks {
        let outcome = task.await?.map_err(anyhow::Error::msg)?;
        ok += outcome.ok;
        errors += outcome.errors;
        histogram.add(&outcome.histogram)?;
        last = last.max(outcome.last);
        if first_error.is_none() {
            first_error = outcome.first_error;
        }
    }
    let measure_from = start.get().map(|s| *s + spec.warmup);
    let elapsed = match (measure_from, last) {
        (Some(from), Some(last)) => last.saturating_duration_since(from),
        _ => Duration::ZERO,
    };
    Ok(RunResult {
        ok,
        errors,
        elapsed,
        histogram,
        first_error,
    })
}

#[cfg(test)]
mod tests {

    use super::*;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;

    #[test]
    fn the_picker_covers_every_id_and_is_deterministic() {
        let mut a = Picker::new(3);
        let mut b = Picker::new(3);
        let mut seen = [false; 10];
        for _ in 0..1_000 {
            let i = a.next_index(10);
            assert_eq!(i, b.next_index(10));
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_ne!(
            Picker::new(1).next_index(1 << 20),
            Picker::new(2).next_index(1 << 20)
        );
    }

    async fn server(app: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn spec() -> LoadSpec {
        LoadSpec {
            connections: 4,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(300),
        }
    }

    #[tokio::test]
    async fn counts_answers_and_records_their_latency() {
        let app = Router::new().route(
            "/api/data/Invoice/{id}",
            get(
                |axum::extract::Path(id): axum::extract::Path<String>,
                 headers: axum::http::HeaderMap| async move {
                    assert_eq!(headers["authorization"], "Bearer tok");
                    assert!(id == "a" || id == "b", "{id}");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    "{\"id\":1}"
                },
            ),
        );
        let addr = server(app).await;
        let workload = Workload::Get {
            prefix: "/api/data/Invoice".to_owned(),
            ids: Arc::new(vec!["a".to_owned(), "b".to_owned()]),
        };
        let r = run(addr, "tok", &workload, spec()).await.unwrap();
        assert_eq!(r.errors, 0, "{:?}", r.first_error);
        assert!(r.ok > 20, "{}", r.ok);
        assert_eq!(r.histogram.len(), r.ok);
        assert!(r.latency_ms(0.5) >= 2.0, "{}", r.latency_ms(0.5));
        assert!(r.elapsed >= Duration::from_millis(250) && r.elapsed < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_non_200_answer_is_an_error() {
        let app = Router::new().route(
            "/x",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "{}") }),
        );
        let addr = server(app).await;
        let workload = Workload::Fixed {
            path: "/x".to_owned(),
        };
        let r = run(addr, "tok", &workload, spec()).await.unwrap();
        assert_eq!(r.ok, 0);
        assert!(r.errors > 0);
        assert!(r.first_error.unwrap().contains("503"));
    }
}
