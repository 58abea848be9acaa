//! `GET /admin/tap?source=&event=&destination=`: the live tap, a chunked NDJSON stream of journey
//! updates as they happen. A reader slower than the events gets `{"lagged": n}` for the `n`
//! updates it lost: the pipeline never waits for it. The stream ends when the service stops.

use crate::observe::{Journey, JourneyFilter};
use crate::serve::app::{App, error};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::sync::watch;

/// The tap's state between lines.
struct Tapping {
    updates: Receiver<Arc<Journey>>,
    closing: watch::Receiver<bool>,
    filter: JourneyFilter,
}

/// The next line to send, or `None` when the stream ends.
async fn next_line(mut t: Tapping) -> Option<(Result<String, std::convert::Infallible>, Tapping)> {
    loop {
        let received = tokio::select! {
            r = t.updates.recv() => r,
            _ = t.closing.wait_for(|closed| *closed) => return None,
        };
        let line = match received {
            Ok(j) if t.filter.matches(&j) => t.filter.show(&j),
            Ok(_) => continue,
            Err(RecvError::Lagged(n)) => json!({"lagged": n}),
            Err(RecvError::Closed) => return None,
        };
        return Some((Ok(format!("{line}\n")), t));
    }
}

/// `GET /admin/tap`.
pub async fn tap(State(app): State<Arc<App>>, Query(filter): Query<JourneyFilter>) -> Response {
    let Some(observer) = &app.observer else {
        return error(StatusCode::NOT_FOUND, "the admin API is off");
    };
    let tapping = Tapping {
        updates: observer.subscribe(),
        closing: observer.closing(),
        filter,
    };
    let lines = futures_util::stream::unfold(tapping, next_line);
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(lines),
    )
        .into_response()
}
