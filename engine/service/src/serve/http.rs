//! The HTTP server under the routes: accepts connections, and holds each client to time limits,
//! so that a client that stalls (slowly or on purpose) holds neither a connection for ever nor the
//! shutdown. A request's headers must arrive within `server.read_timeout_ms`, and its body may
//! pause no longer than that between two pieces (else the connection is closed, or the body
//! read fails and the request is refused). On shutdown the listener closes at once, and requests
//! still open after `server.shutdown_timeout_ms` are closed, so that delivery's drain starts.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::Service;
use tower_http::timeout::TimeoutBody;

/// How long clients may take ([`serve`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For a request's headers, and for each pause inside its body.
    pub read: Duration,
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
    // The connections' tasks, so that those still open after the grace are closed, not left.
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: the next accept may succeed.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(|body| Body::new(TimeoutBody::new(limits.read, body)));
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(request)
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = connections.watch(connection);
        tasks.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
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
