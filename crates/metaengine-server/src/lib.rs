//! The HTTP server of metaengine (SPEC §9–§11): the REST API over the runtime's registry, data
//! service, policy gate and audit trail; bearer-JWT identity; RFC 9457 problem+json errors;
//! OpenAPI; health, readiness and Prometheus metrics.
//!
//! Start it with [`AppState::build`] over a migrated store, then [`serve`] on a bound listener;
//! `metaengine serve` does both. Tests build the same [`router`] on an ephemeral port.
#![deny(missing_docs)]

pub mod auth;
pub mod config;
pub mod connections;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod state;

use std::future::Future;

pub use config::{ServerConfig, Settings};
pub use routes::{router, router_with};
pub use state::{AppState, SharedState, StartError};

/// Serves `state` (the API's routes and the `extra` ones, such as the admin UI) on `listener`
/// under its connection limits until `shutdown` completes; then stops accepting, closes idle
/// connections, lets in-flight requests finish within the shutdown grace period (cutting the
/// rest), flushes the audit writer and chains the last sealed audit rows. The audit chainer runs
/// meanwhile, and the audit retention purge hourly (from the start). The realtime feed runs
/// meanwhile; its streams are closed as shutdown starts (they would never finish by themselves).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    extra: axum::Router<SharedState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Err(e) = state.realtime.start().await {
        // The first subscriber tries again.
        tracing::warn!(error = %e, "the realtime feed could not start");
    }
    let chainer = metaengine_runtime::audit_chainer::AuditChainer::spawn(state.store.clone());
    let retention =
        metaengine_runtime::retention::spawn(state.store.clone(), state.audit_retention_days);
    let realtime = state.realtime.clone();
    let shutdown = async move {
        shutdown.await;
        realtime.shutdown();
    };
    let app = router_with(state.clone(), extra);
    let result = connections::serve_connections(listener, app, state.connections, shutdown).await;
    if let Some(purge) = retention {
        purge.abort();
    }
    state.audit.shutdown().await;
    chainer.shutdown(state.store.as_ref()).await;
    result
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
