//! The admin API's JSON handlers: destinations (with their counts, switched on and off at run
//! time), dead letters (listed, retried, dropped) on the running service's own queue, and the
//! journal of recent events. The live tap is [`super::tap`].

use crate::clock::unix_now;
use crate::dead_letters::{self, DeadLetterFilter};
use crate::metrics::{Counts, TALLIED};
use crate::observe::{JourneyFilter, LegStatus};
use crate::serve::app::{App, error};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use switchyard_core::report::with_causes;

/// `{"received": n, "sent": n, ...}`.
fn counts_json(counts: &Counts) -> Map<String, Value> {
    TALLIED
        .iter()
        .zip(counts)
        .map(|(name, n)| ((*name).to_owned(), json!(n)))
        .collect()
}

/// One destination as `GET /admin/destinations` shows it; `None` when there is none of that name.
fn destination_json(app: &App, name: &str) -> Option<Value> {
    let loaded = app.loaded();
    let dest = loaded.pipeline.destination(name)?;
    let config = loaded
        .config
        .destinations
        .iter()
        .find(|d| d.common().name == name)?;
    let common = config.common();
    let tally = app.metrics.tally(name, unix_now());
    let per_minute: Vec<Value> = tally
        .minutes
        .iter()
        .map(|(minute, counts)| {
            let mut m = counts_json(counts);
            m.insert("minute".into(), json!(minute));
            Value::Object(m)
        })
        .collect();
    let status = if dest.is_active() {
        "active"
    } else {
        "deactivated"
    };
    Some(json!({
        "name": name,
        "type": config.type_name(),
        "status": status,
        "sources": common.sources,
        "mapping": common.mapping,
        "counts": counts_json(&tally.totals),
        "per_minute": per_minute,
    }))
}

/// `GET /admin/destinations`.
pub async fn destinations(State(app): State<Arc<App>>) -> Response {
    let loaded = app.loaded();
    let all: Vec<Value> = loaded
        .pipeline
        .destinations()
        .iter()
        .filter_map(|d| destination_json(&app, d.name()))
        .collect();
    Json(all).into_response()
}

/// `POST /admin/destinations/{name}/activate`.
pub async fn activate(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    switch(&app, &name, true)
}

/// `POST /admin/destinations/{name}/deactivate`.
pub async fn deactivate(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    switch(&app, &name, false)
}

/// Switches a destination on or off until the next reload (which reads the file's `status`).
fn switch(app: &App, name: &str, active: bool) -> Response {
    let loaded = app.loaded();
    let Some(dest) = loaded.pipeline.destination(name) else {
        return no_destination(&loaded, name);
    };
    if active && !app.deliverer.running().can_send(name) {
        return error(
            StatusCode::CONFLICT,
            format!(
                "destination `{name}` cannot send (a secret it needs is not set): set it and reload"
            ),
        );
    }
    let was = dest.set_active(active);
    if was != active {
        let state = if active { "activated" } else { "deactivated" };
        tracing::info!(
            destination = name,
            "destination {state} through the admin API"
        );
    }
    match destination_json(app, name) {
        Some(v) => Json(v).into_response(),
        None => no_destination(&loaded, name),
    }
}

fn no_destination(loaded: &crate::config::Loaded, name: &str) -> Response {
    let known: Vec<&str> = loaded
        .pipeline
        .destinations()
        .iter()
        .map(|d| d.name())
        .collect();
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no destination named `{name}`; destinations: {}",
            known.join(", ")
        ),
    )
}

/// The query of `GET /admin/dead-letters`.
#[derive(Debug, Deserialize)]
pub struct DeadLetterQuery {
    destination: Option<String>,
}

/// `GET /admin/dead-letters?destination=`.
pub async fn list_dead_letters(
    State(app): State<Arc<App>>,
    query: Result<Query<DeadLetterQuery>, QueryRejection>,
) -> Response {
    let query = match read_query(query) {
        Ok(query) => query,
        Err(refused) => return *refused,
    };
    let filter = DeadLetterFilter {
        destination: query.destination,
        ..DeadLetterFilter::default()
    };
    match dead_letters::matching(app.queue.as_ref(), &filter, true).await {
        Ok(letters) => {
            let all: Vec<Value> = letters
                .iter()
                .map(|(id, l)| dead_letters::to_json(*id, l))
                .collect();
            Json(all).into_response()
        }
        Err(e) => store_failed(&e),
    }
}

/// The body of `POST /admin/dead-letters/retry` and `.../drop`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterBody {
    #[serde(default)]
    ids: Option<Vec<u64>>,
    destination: Option<String>,
    older_than_secs: Option<u64>,
}

impl From<DeadLetterBody> for DeadLetterFilter {
    fn from(b: DeadLetterBody) -> Self {
        Self {
            ids: b.ids.unwrap_or_default(),
            destination: b.destination,
            older_than_secs: b.older_than_secs,
        }
    }
}

/// Reads an optional JSON body (an empty one is `{}`).
fn read_body(body: &[u8]) -> Result<DeadLetterFilter, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DeadLetterFilter::default());
    }
    let read: DeadLetterBody = serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the body is not what this takes ({{\"ids\": [..], \"destination\": \"..\", \"older_than_secs\": n}}): {e}"),
        ))
    })?;
    // A script whose selection matched nothing must not take every dead letter.
    if read.ids.as_ref().is_some_and(Vec::is_empty) {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "`ids` is empty: name at least one id, or leave `ids` out",
        )));
    }
    Ok(read.into())
}

/// `POST /admin/dead-letters/retry`: `{"ids": [..]}`, `{"destination": ".."}` or `{}` (all) →
/// `{"retried": n}`; delivery sends them at once.
pub async fn retry_dead_letters(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    let filter = match read_body(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    // Letters go back to a destination of the running config: one it does not have could never
    // take them (`list` and `drop` still reach the letters of a destination since removed).
    let loaded = app.loaded();
    if let Some(name) = &filter.destination
        && loaded.pipeline.destination(name).is_none()
    {
        return no_destination(&loaded, name);
    }
    let queue = app.queue.as_ref();
    let letters = match dead_letters::matching(queue, &filter, true).await {
        Ok(l) => l,
        Err(e) => return store_failed(&e),
    };
    match dead_letters::requeue(queue, &letters).await {
        Ok(n) => {
            if n > 0 {
                app.wake.notify_one();
                tracing::info!(
                    events = n,
                    "dead letters queued again through the admin API"
                );
            }
            Json(json!({"retried": n})).into_response()
        }
        Err(e) => store_failed(&e),
    }
}

/// `POST /admin/dead-letters/drop`: those matching every condition given (at least one) →
/// `{"dropped": n}`.
pub async fn drop_dead_letters(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    let filter = match read_body(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if filter.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "say which dead letters to drop: `ids`, `destination` and/or `older_than_secs`",
        );
    }
    let queue = app.queue.as_ref();
    let letters = match dead_letters::matching(queue, &filter, false).await {
        Ok(l) => l,
        Err(e) => return store_failed(&e),
    };
    match dead_letters::remove(queue, &letters).await {
        Ok(n) => {
            if n > 0 {
                tracing::info!(events = n, "dead letters dropped through the admin API");
            }
            Json(json!({"dropped": n})).into_response()
        }
        Err(e) => store_failed(&e),
    }
}

/// The query string, or the JSON 400 that refuses one this endpoint cannot read (as every other
/// error here).
fn read_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Box<Response>> {
    query.map(|Query(query)| query).map_err(|rejection| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!(
                "the query string is not what this takes: {}",
                rejection.body_text()
            ),
        ))
    })
}

fn store_failed(e: &switchyard_queue::QueueError) -> Response {
    tracing::error!(
        "the admin API could not read or change the dead letters: {}",
        with_causes(e)
    );
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the queue failed: {}", with_causes(e)),
    )
}

/// The query of `GET /admin/events`: a [`JourneyFilter`] and a limit.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(flatten)]
    filter: JourneyFilter,
    limit: Option<usize>,
}

/// `GET /admin/events?source=&event=&destination=&status=&event_id=&limit=`: recent journeys,
/// newest first (default limit 100, at most 1,000).
pub async fn events(
    State(app): State<Arc<App>>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    let query = match read_query(query) {
        Ok(query) => query,
        Err(refused) => return *refused,
    };
    let Some(observer) = &app.observer else {
        return error(StatusCode::NOT_FOUND, "the admin API is off");
    };
    if let Some(status) = &query.filter.status
        && LegStatus::from_name(status).is_none()
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "no status `{status}`: a leg's status is one of {}",
                LegStatus::ALL.map(LegStatus::as_str).join(", ")
            ),
        );
    }
    let journeys = observer.recent(&query.filter, query.limit.unwrap_or(100));
    let shown: Vec<Value> = journeys.iter().map(|j| query.filter.show(j)).collect();
    Json(shown).into_response()
}

/// `GET /admin/events/{id}`: one journey, while the journal keeps it.
pub async fn event(State(app): State<Arc<App>>, id: Result<Path<u64>, PathRejection>) -> Response {
    let Ok(Path(id)) = id else {
        return error(
            StatusCode::BAD_REQUEST,
            "a journey id is a whole number (as `GET /admin/events` lists them)",
        );
    };
    match app.observer.as_ref().and_then(|o| o.get(id)) {
        Some(j) => Json(json!(j.as_ref())).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!(
                "no journey {id} in the journal (it keeps the last server.admin.journal_events)"
            ),
        ),
    }
}

/// `POST /admin/reload`: `{"reloaded": true}`, or 422 with every error of the new config (the
/// running one stays).
pub async fn reload(State(app): State<Arc<App>>) -> Response {
    match crate::serve::reload::reload(app).await {
        Ok(()) => Json(json!({"reloaded": true})).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}
