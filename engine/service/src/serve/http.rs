//! The HTTP server under the routes: accepts connections, and holds each client to limits, so
//! that clients that stall (slowly or on purpose) hold neither connections for ever nor the
//! shutdown:
//! - a request's headers must arrive within `server.read_timeout_ms`, and its body may pause no
//!   longer than that between two pieces (else the connection is closed, or the body read fails
//!   and the request is refused);
//! - its whole body must arrive within `server.body_timeout_ms` ([`DeadlineBody`]; else `408`);
//! - at most `server.max_connections` connections are served at once; further clients wait in
//!   the system's queue of pending connections until one closes.
//!
//! On shutdown the listener closes at once, and requests still open after
//! `server.shutdown_timeout_ms` are closed, so that delivery's drain starts.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::{BoxError, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;
use tower_http::timeout::TimeoutBody;

/// How long clients may take, and how many are served at once ([`serve`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For a request's headers, and for each pause inside its body.
    pub read: Duration,
    /// For a request's whole body.
    pub body: Duration,
    /// Connections served at once.
    pub connections: usize,
    /// For the requests still open once shutdown began.
    pub grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then waits up to `limits.grace` for
/// the requests still open, and closes what is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read);
    let connections = GracefulShutdown::new();
    let places = Arc::new(Semaphore::new(limits.connections.max(1)));
    // The connections' tasks, so that those still open after the grace are closed, not left.
    let mut tasks = tokio::task::JoinSet::new();
    let mut full_warned = None;
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let (place, stream, peer) = tokio::select! {
            accepted = accept(&listener, &places, limits.connections, &mut full_warned) => accepted,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(|body| {
                let paced = TimeoutBody::new(limits.read, body);
                Body::new(DeadlineBody::new(paced, limits.body))
            });
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(request)
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = connections.watch(connection);
        tasks.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
            drop(place);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still open {} ms after shutdown began: closed",
            limits.grace.as_millis()
        );
        tasks.abort_all();
    }
}

/// How often, at most, the log says that every place for connections is taken.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The next connection, once one of the `places` for connections is free (the place is held
/// until the connection closes). `warned` is when the log last said they were all taken.
async fn accept(
    listener: &TcpListener,
    places: &Arc<Semaphore>,
    most: usize,
    warned: &mut Option<tokio::time::Instant>,
) -> (
    OwnedSemaphorePermit,
    tokio::net::TcpStream,
    std::net::SocketAddr,
) {
    let place = match places.clone().try_acquire_owned() {
        Ok(place) => place,
        Err(_) => {
            if warned.is_none_or(|at| at.elapsed() >= FULL_WARNING_EVERY) {
                *warned = Some(tokio::time::Instant::now());
                tracing::warn!(
                    "{most} connections open (server.max_connections): new clients wait until \
                     one closes (said at most once a minute)"
                );
            }
            // The semaphore is never closed, so acquiring fails only if it were.
            let Ok(place) = places.clone().acquire_owned().await else {
                return std::future::pending().await;
            };
            place
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => return (place, stream, peer),
            Err(e) => {
                // Out of file descriptors, say: the next accept may succeed.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Why a request's body was cut off: it did not arrive whole within `server.body_timeout_ms`.
#[derive(Debug, thiserror::Error)]
#[error("the body did not arrive within server.body_timeout_ms")]
pub struct BodyTooSlow;

pin_project_lite::pin_project! {
    /// A request body that must arrive whole by a deadline, set when the request starts: past
    /// it, reading the body fails with [`BodyTooSlow`].
    pub struct DeadlineBody<B> {
        #[pin]
        body: B,
        #[pin]
        deadline: tokio::time::Sleep,
    }
}

impl<B> DeadlineBody<B> {
    pub fn new(body: B, within: Duration) -> Self {
        Self {
            body,
            deadline: tokio::time::sleep(within),
        }
    }
}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if this.deadline.poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTooSlow))));
        }
        this.body.poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Whether `error` (or one of its causes) is a body cut off by a time limit: its pause
/// (`server.read_timeout_ms`) or its whole (`server.body_timeout_ms`).
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source())
        .any(|e| e.is::<BodyTooSlow>() || e.is::<tower_http::timeout::TimeoutError>())
}
