//! `switchyard serve`: the running service. Ingestion over HTTP into the durable queue, delivery
//! from the queue to the destinations, metrics; a graceful shutdown on SIGTERM or Ctrl-C.
//!
//! The HTTP API: `POST /v1/events` ([`ingest`]), `POST /v1/collect` ([`collect`]: events from the
//! browser and its pixel calls), `GET /v1/sdk.js` (the browser script), `GET /healthz`,
//! `GET /readyz`, `GET /metrics`; with `server.admin`, the web console and the mapping preview
//! ([`crate::console`]). [`app`]: what the handlers share, among them the
//! de-duplication of `event_id`s per source within a window (see [`crate::backend`]: in memory
//! for the embedded queue, by JetStream for NATS).
//!
//! [`reload`]: the config read again on SIGHUP (or `POST /admin/reload`), without a restart.
//!
//! [`http`]: the server under the routes, which holds clients to `server.read_timeout_ms`.
//!
//! Shutdown: readiness turns false and the listener closes, the server finishes the requests in
//! flight (for up to `server.shutdown_timeout_ms`, then closes them), then delivery finishes its
//! rounds and delivers what is queued for up to `server.shutdown_timeout_ms`; whatever is left
//! stays in the queue for the next start.

pub mod app;
pub mod collect;
pub mod http;
pub mod ingest;
pub mod reload;

use crate::backend::{Backend, QueueFailure, QueueingError};
use crate::config::Loaded;
use crate::delivery::{Deliverer, DeliveryError};
use crate::metrics::Metrics;
use crate::observe::Observer;
use app::{App, Parts};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use switchyard_queue::WindowDedup;
use tokio::sync::{Notify, watch};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Queue(#[from] QueueFailure),
    #[error(transparent)]
    Queueing(#[from] QueueingError),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the events")]
    Input(#[source] std::io::Error),
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
    #[error(
        "server.admin is set but its token's environment variable {0} is not: set it, or remove server.admin"
    )]
    AdminToken(String),
    #[error("cannot listen for SIGHUP (reload)")]
    Signal(#[source] std::io::Error),
}

/// Every second: forgets the ids the de-duplication window has passed (freeing their memory),
/// and reports how many are kept.
async fn sweep(dedup: Arc<WindowDedup>, metrics: Arc<Metrics>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        dedup.sweep();
        let (ids, bytes) = dedup.usage();
        metrics.dedup_ids.set(ids as i64);
        metrics.dedup_bytes.set(bytes as i64);
    }
}

/// The handlers' state: delivery (with the observer of the admin API, when it is on), the queue.
fn app(loaded: Arc<Loaded>, backend: Backend, metrics: Arc<Metrics>) -> Result<App, ServeError> {
    let wake = Arc::new(Notify::new());
    let observer = loaded
        .config
        .server
        .admin
        .as_ref()
        .map(|a| Arc::new(Observer::new(a.journal_events)));
    let queue = backend.queue.clone();
    let mut deliverer =
        Deliverer::new(loaded.clone(), queue.clone(), metrics.clone(), wake.clone())?;
    if let Some(o) = &observer {
        deliverer = deliverer.with_observer(o.clone());
    }
    let deliverer = Arc::new(deliverer);
    let running = deliverer.clone();
    metrics.count_plugin_traps(move || running.running().loaded.pipeline.plugin_traps());
    Ok(App::new(
        loaded,
        Parts {
            queue,
            metrics,
            deliverer,
            observer,
            dedup: backend.dedup,
            wake,
        },
    ))
}

/// Runs the service until SIGTERM or Ctrl-C. `listen` overrides `server.listen`. The address
/// actually bound (useful with port 0) is announced on standard error as `listening on ADDR`.
pub async fn run(loaded: Loaded, listen: Option<String>) -> Result<(), ServeError> {
    if let Some(admin) = &loaded.config.server.admin
        && !admin.token.is_set()
    {
        return Err(ServeError::AdminToken(admin.token.var().to_owned()));
    }
    let loaded = Arc::new(loaded);
    let backend = crate::backend::open(&loaded).await?;
    let queue = backend.queue.clone();
    let metrics = Arc::new(Metrics::new());
    let sweeper = backend
        .window
        .clone()
        .map(|window| tokio::spawn(sweep(window, metrics.clone())));
    let app = Arc::new(app(loaded.clone(), backend, metrics)?);
    let deliverer = app.deliverer.clone();
    reload_on_hangup(app.clone())?;
    let server = &loaded.config.server;
    let addr = listen.unwrap_or_else(|| server.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: addr.clone(),
            source,
        })?;
    if let Ok(bound) = listener.local_addr() {
        tracing::info!("listening on {bound}");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let delivery = tokio::spawn(deliverer.run(stop_rx));
    let router = routes(app.clone(), server.max_body_kib.saturating_mul(1024));
    let signal_app = app.clone();
    let limits = http::Limits {
        read: Duration::from_millis(server.read_timeout_ms),
        body: Duration::from_millis(server.body_timeout_ms),
        connections: server.max_connections,
        grace: Duration::from_millis(server.shutdown_timeout_ms),
    };
    http::serve(listener, router, limits, async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests, then delivery");
        signal_app.ready.store(false, Ordering::Relaxed);
        if let Some(o) = &signal_app.observer {
            o.close();
        }
    })
    .await;
    if let Some(sweeper) = sweeper {
        sweeper.abort();
    }
    let _ = stop_tx.send(true);
    let drain = Duration::from_millis(server.shutdown_timeout_ms);
    match tokio::time::timeout(drain, delivery).await {
        Ok(_) => tracing::info!("delivery finished"),
        Err(_) => tracing::warn!(
            "delivery did not finish within {} ms; the rest stays queued",
            server.shutdown_timeout_ms
        ),
    }
    let (left, _) = queue.depth();
    tracing::info!("stopped; {left} events queued");
    Ok(())
}

/// The HTTP API's routes.
pub fn routes(app: Arc<App>, max_body: usize) -> Router {
    Router::new()
        .route("/v1/events", post(ingest::ingest))
        .route(
            "/v1/collect",
            post(collect::collect).options(collect::preflight),
        )
        .route("/v1/sdk.js", get(sdk))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .merge(admin_routes(&app))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

/// The admin API, the preview and (with `server.admin.console`) the console, when `server.admin`
/// is set (else none: 404). Read at start: a reload changes neither the token nor the console.
fn admin_routes(app: &Arc<App>) -> Router<Arc<App>> {
    let console = app.loaded().config.server.admin.as_ref().map(|a| a.console);
    match (app.admin_token.is_some(), console) {
        (true, Some(pages)) => {
            crate::admin::routes(app.clone()).merge(crate::console::routes(app.clone(), pages))
        }
        _ => Router::new(),
    }
}

/// The browser script (`engine/service/assets/sdk.js`).
pub const SDK_JS: &str = include_str!("../../assets/sdk.js");

async fn sdk() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        SDK_JS,
    )
        .into_response()
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let (count, bytes) = app.queue.depth();
    app.metrics.queue_depth.set(count as i64);
    app.metrics.queue_bytes.set(bytes as i64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// Reloads the config on each SIGHUP (instead of dying of it), until the process ends.
fn reload_on_hangup(app: Arc<App>) -> Result<(), ServeError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).map_err(ServeError::Signal)?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the config");
                // The outcome is logged by the reload.
                let _ = reload::reload(app.clone()).await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = app;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
