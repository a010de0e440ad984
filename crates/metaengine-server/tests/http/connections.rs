//! Issue 12 items 14 and 15: slow and silent clients cannot hold the server (connection limit,
//! header-read and idle timeouts), and shutdown ends within its grace period however many
//! clients keep connections open, with the audit trail flushed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metaengine_server::Settings;
use metaengine_store::{EventType, Store};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{admin, invoice_v1, start_with};

/// Reads until the server closes the socket (or answers and closes); `None` if it is still
/// open after `within`.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// 40 sockets that send half a request head and then nothing, against a limit of 8
/// connections: each is closed after the header-read timeout, and `/health` still answers.
async fn slow_headers_cannot_exhaust_the_connections(store: Arc<dyn Store>) {
    let server = start_with(
        store,
        Settings {
            max_connections: Some(8),
            header_read_timeout_ms: Some(400),
            ..Settings::default()
        },
    )
    .await;
    let mut sockets = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(addr(&server.base)).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        sockets.push(s);
    }
    let health = tokio::time::timeout(
        Duration::from_secs(15),
        server.client.get(format!("{}/health", server.base)).send(),
    )
    .await
    .expect("/health answers while slow clients hold connections")
    .unwrap();
    assert_eq!(health.status(), 200);
    for s in &mut sockets {
        let seen = closed_within(s, Duration::from_secs(15))
            .await
            .expect("a slow request head is cut after the header-read timeout");
        assert!(!seen.contains("200 OK"), "{seen}");
    }
    server.stop().await;
}

/// A kept-alive connection that says nothing after its answer is closed after the idle timeout
/// (the header-read timeout is far longer here, so the idle timer is what closes it).
async fn idle_connections_are_closed(store: Arc<dyn Store>) {
    let server = start_with(
        store,
        Settings {
            header_read_timeout_ms: Some(60_000),
            idle_timeout_ms: Some(300),
            ..Settings::default()
        },
    )
    .await;
    let mut s = TcpStream::connect(addr(&server.base)).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let seen = closed_within(&mut s, Duration::from_secs(10))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(seen.starts_with("HTTP/1.1 200"), "answered first: {seen}");
    server.stop().await;
}

/// Shutdown with an idle kept-alive connection, a silent one and a request whose body never
/// completes: it ends within the grace period, and the buffered audit row of a read made just
/// before it is stored.
async fn shutdown_ends_within_its_grace_period(store: Arc<dyn Store>) {
    let server = start_with(
        store.clone(),
        Settings {
            shutdown_grace_ms: Some(500),
            ..Settings::default()
        },
    )
    .await;
    invoice_v1(&server).await;
    let admin = admin();
    let created = server
        .post(
            "/api/data/Invoice",
            &admin,
            json!({ "invoiceNumber": "INV-STOP", "customerId": "c", "totalAmount": 1 }),
        )
        .await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    // A read: its `data.read` row goes through the batched audit writer.
    let read = server.get(&format!("/api/data/Invoice/{id}"), &admin).await;
    assert_eq!(read.status, 200);

    let mut idle = TcpStream::connect(addr(&server.base)).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let _silent = TcpStream::connect(addr(&server.base)).await.unwrap();
    let mut in_flight = TcpStream::connect(addr(&server.base)).await.unwrap();
    let head = format!(
        "POST /api/data/Invoice HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"invoiceNumber\""
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("shutdown ends within its grace period although clients keep connections");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        closed_within(&mut idle, Duration::from_secs(1))
            .await
            .is_some(),
        "the idle connection is closed"
    );

    // The buffered audit row of the read is stored (the writer was flushed on the way out).
    let audit = store
        .query_audit(&metaengine_store::AuditQuery {
            event_types: vec![EventType::DataRead],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        audit.data.iter().any(|row| row
            .details
            .as_ref()
            .is_some_and(|d| d.to_string().contains(&id))),
        "the buffered data.read row was flushed: {:?}",
        audit.data
    );
}

crate::on_both_backends!(
    slow_headers_cannot_exhaust_the_connections,
    idle_connections_are_closed,
    shutdown_ends_within_its_grace_period,
);
