//! `POST /v1/collect`: one event from the browser, authenticated by its source's public key
//! (`?key=`). The event is queued like any other (its server-side copies are delivered from the
//! queue), and the answer says what the browser fires: per active destination whose rows forward
//! client-side, the pixel to load and the calls to make. Both copies come out of the same
//! pipeline (`Pipeline::route`, the config's `transforms`, the destination's `transforms`, its
//! mapping, its `payload_transforms`), with the same `event_id`, so the platform counts the event
//! once and both copies agree; a plugin that drops or fails the event stops both (counted in
//! `switchyard_pixel_events_total`). Consent gates both sides alike.
//! The visitor's IP address is set as `$ip`, whatever the body says: the peer's address, or, when
//! the peer is one of `server.trusted_proxies`, the nearest `X-Forwarded-For` entry that is not.
//! Events whose time lies outside `server.max_event_age_hours` / `max_event_ahead_secs` are
//! refused (400). Every answer, refusals included (413 too), is JSON with the CORS headers.
//! CORS is open (`*`): shops call it from their own origin; `text/plain` bodies are accepted, as
//! `navigator.sendBeacon` sends them.

use super::app::{App, Live, body, error, read_json};
use crate::clock::{unix_ms, unix_now};
use crate::delivery::plan::log_plugin_line;
use crate::pipeline::{Copies, InputFate, halt_outcome};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use switchyard_core::destination::ClientActions;
use switchyard_core::event::SourceEvent;
use switchyard_core::json_unique::Unique;
use switchyard_core::router::{Outcome, Status};
use switchyard_queue::Record;
use switchyard_wasm::sandbox::level_name;

fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    r
}

/// The CORS preflight.
pub async fn preflight() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

pub async fn collect(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    request: Result<Bytes, BytesRejection>,
) -> Response {
    match body(request) {
        Ok(body) => cors(handle(&app, peer, &query, &headers, &body).await),
        Err((status, message)) => cors(error(status, message)),
    }
}

/// The visitor's address: the peer's, unless the peer is a trusted proxy; then, walking
/// `X-Forwarded-For` from its end (each hop appends the address it received from), the first
/// address that is not a trusted proxy (or the last readable one).
fn visitor_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[ipnet::IpNet]) -> IpAddr {
    // A listener on `[::]` sees IPv4 peers as `::ffff:a.b.c.d`: read as the IPv4 address they
    // are, for `trusted_proxies` and for `$ip` (the pixel reports the IPv4 one).
    let peer = peer.to_canonical();
    let trusted = |ip: &IpAddr| proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut visitor = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = hop_address(hop) else {
            break;
        };
        visitor = ip;
        if !trusted(&ip) {
            break;
        }
    }
    visitor
}

/// The address of an `X-Forwarded-For` entry: an address, or one with its port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`, as some load balancers write them).
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()?;
    Some(ip.to_canonical())
}

/// How far the browser's clock is off, in seconds (its time at sending, `sent_at`, which the
/// script adds to the URL, against the time received): event times from that clock are moved by
/// as much. Within [`CLOCK_SLACK_SECS`] (a slow network), or without `sent_at`, 0.
fn clock_skew(query: &HashMap<String, String>, received_at: i64) -> i64 {
    let sent_at = query.get("sent_at").and_then(|s| s.parse::<i64>().ok());
    match sent_at.map(|s| received_at.saturating_sub(s)) {
        Some(skew) if skew.abs() > CLOCK_SLACK_SECS => skew,
        _ => 0,
    }
}

/// A browser clock off by at most this many seconds is taken as it is.
const CLOCK_SLACK_SECS: i64 = 30;

/// Moves the event's `timestamp` (unix seconds, as the script sends it) by `skew` seconds.
fn correct_clock(event: &mut Value, skew: i64) {
    if skew == 0 {
        return;
    }
    if let Some(t) = event.get_mut("timestamp")
        && let Some(seconds) = t.as_i64()
    {
        *t = Value::from(seconds.saturating_add(skew));
    }
}

/// Sets the visitor's IP address as the profile property `$ip`, replacing any the body claims.
fn set_ip(event: &mut Value, ip: IpAddr) {
    let key = if event.get("profileProperties").is_some() {
        "profileProperties"
    } else {
        "profile_properties"
    };
    if let Some(profile) = event.get_mut(key).and_then(Value::as_object_mut) {
        profile.insert("$ip".to_owned(), Value::String(ip.to_string()));
    }
}

async fn handle(
    app: &Arc<App>,
    peer: SocketAddr,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let live = app.live();
    let Some(source) = query
        .get("key")
        .and_then(|k| live.public_keys.get(k))
        .cloned()
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or unknown `key` (a browser source's public key)",
        );
    };
    let received_at = unix_now();
    let request = Request {
        source: &source,
        peer,
        headers,
        body,
        skew: clock_skew(query, received_at),
    };
    let event = match checked_event(app, &live, &request, received_at) {
        Ok(event) => event,
        Err((status, message)) => {
            app.metrics
                .received
                .with_label_values(&[source.as_str(), "rejected"])
                .inc();
            return error(status, message);
        }
    };
    let record = Record {
        source: source.clone(),
        received_at,
        queued_at_ms: unix_ms(),
        event: event.json_text(),
        only: None,
    };
    let queued = match app
        .enqueue(&source, vec![(event.id().to_owned(), record)])
        .await
    {
        Ok(q) => q,
        Err(r) => return r,
    };
    if queued.duplicates > 0 {
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({"event_id": event.id(), "duplicate": true, "destinations": []})),
        )
            .into_response();
    }
    let event_id = event.id().to_owned();
    let shared = Arc::clone(app);
    let browser = move || browser_copy(&shared, event, &source, received_at);
    let destinations = match tokio::task::spawn_blocking(browser).await {
        Ok(d) => d,
        Err(e) => {
            // The event is queued: its server copy goes out; the browser is told to fire nothing.
            tracing::error!("the browser copy of `{event_id}` was not computed: {e}");
            Vec::new()
        }
    };
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"event_id": event_id, "destinations": destinations})),
    )
        .into_response()
}

/// What a collect request brings: where from, its headers and body, and how far its clock is off.
struct Request<'r> {
    source: &'r str,
    peer: SocketAddr,
    headers: &'r HeaderMap,
    body: &'r [u8],
    skew: i64,
}

/// The event of the request's body, with the visitor's IP address set and its time corrected by
/// the browser clock's skew, validated and checked against the time window; else the status and
/// message that refuse it.
fn checked_event(
    app: &App,
    live: &Live,
    request: &Request<'_>,
    received_at: i64,
) -> Result<SourceEvent, (StatusCode, String)> {
    let Unique(mut value) = read_json(
        app,
        request.headers,
        request.body,
        &["application/json", "text/plain"],
        "send one JSON event (application/json, or text/plain from sendBeacon)",
    )?;
    let ip = visitor_ip(request.peer.ip(), request.headers, &live.proxies);
    set_ip(&mut value, ip);
    correct_clock(&mut value, request.skew);
    SourceEvent::from_value(value, received_at)
        .and_then(|event| {
            live.admits(request.source, &event, received_at)
                .map(|()| event)
        })
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

/// The browser copy of `event` from `source`, through the pipeline its server copy takes in
/// delivery: per destination whose rows fire it client-side, the pixel to load and its calls
/// (several events when a plugin split it: their calls, in order). What each destination was told
/// is counted. Runs the plugins: call it on a blocking thread.
fn browser_copy(app: &App, event: SourceEvent, source: &str, received_at: i64) -> Vec<Value> {
    let loaded = app.loaded();
    let pipeline = &loaded.pipeline;
    let mut logs = Vec::new();
    let chunk = pipeline.transform(vec![event], received_at, &mut logs);
    let copies = Copies::ServerAndBrowser;
    let fates = pipeline.route(&chunk, source, copies, received_at, &mut logs);
    for (plugin, line) in logs {
        log_plugin_line(&plugin, level_name(line.level), &line.message);
    }
    let destinations = pipeline.destinations();
    // Per destination, in config order: its calls so far, or the status that kept it quiet.
    let mut fired: Vec<Result<ClientActions, &'static str>> =
        vec![Err(Status::Skipped.as_str()); destinations.len()];
    for fate in &fates {
        let routed = match fate {
            InputFate::Halted(halt) => {
                let (status, _) = halt_outcome(halt);
                fired.fill(Err(status.as_str()));
                continue;
            }
            InputFate::Routed(routed) => routed,
        };
        for r in routed {
            // One outcome per destination, in config order.
            for ((slot, outcome), dest) in fired.iter_mut().zip(&r.outcomes).zip(destinations) {
                match (slot.as_mut(), dest.client_actions(r.event, outcome)) {
                    (Ok(so_far), Some(more)) => so_far.calls.extend(more.calls),
                    (Ok(_), None) => {}
                    (Err(_), Some(first)) => *slot = Ok(first),
                    (Err(_), None) => *slot = Err(quiet_status(outcome)),
                }
            }
        }
    }
    let mut answer = Vec::new();
    for (dest, slot) in destinations.iter().zip(fired) {
        let status = slot.as_ref().map_or_else(|s| *s, |_| "fired");
        app.metrics
            .pixel
            .with_label_values(&[dest.name(), status])
            .inc();
        if let Ok(actions) = slot {
            match serde_json::to_value(actions) {
                Ok(v) => answer.push(v),
                Err(e) => tracing::error!(
                    destination = dest.name(),
                    "the pixel calls do not serialize: {e}"
                ),
            }
        }
    }
    answer
}

/// Why a destination fires nothing for an event: its status, or `server_only` when it is sent,
/// server-side only (the rows, or consent, keep the browser quiet).
fn quiet_status(outcome: &Outcome<'_>) -> &'static str {
    match outcome.status {
        Status::Sent => "server_only",
        other => other.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_visitor_is_read_through_ipv4_mapped_peers_and_entries_with_ports() {
        let proxies: Vec<ipnet::IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let visitor = |peer: IpAddr, header: &str| visitor_ip(peer, &forwarded(header), &proxies);
        // A dual-stack listener's IPv4 peer is the trusted proxy it is.
        assert_eq!(visitor(mapped, "9.9.9.9").to_string(), "9.9.9.9");
        // Without a proxy, `$ip` is the IPv4 address, as the pixel reports it.
        let direct: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(visitor(direct, "9.9.9.9").to_string(), "203.0.113.7");
        for (header, ip) in [
            ("9.9.9.9:4711", "9.9.9.9"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("::ffff:9.9.9.9", "9.9.9.9"),
            ("junk", "127.0.0.1"),
        ] {
            assert_eq!(visitor(mapped, header).to_string(), ip, "{header}");
        }
    }

    #[test]
    fn a_browser_clock_off_by_more_than_the_slack_moves_its_event_times() {
        let query = |sent: i64| HashMap::from([("sent_at".to_owned(), sent.to_string())]);
        let now = 1_725_300_000;
        assert_eq!(clock_skew(&query(now + 700), now), -700);
        assert_eq!(clock_skew(&query(now - 3600), now), 3600);
        assert_eq!(clock_skew(&query(now + 20), now), 0, "within the slack");
        assert_eq!(clock_skew(&HashMap::new(), now), 0);
        let mut event = json!({"timestamp": now + 690});
        correct_clock(&mut event, -700);
        assert_eq!(event["timestamp"], now - 10);
        let mut iso = json!({"timestamp": "2024-09-02T12:34:56Z"});
        correct_clock(&mut iso, -700);
        assert_eq!(
            iso["timestamp"], "2024-09-02T12:34:56Z",
            "only seconds, as the script sends"
        );
    }
}
