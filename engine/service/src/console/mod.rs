//! The web console at `/console`: one page (`engine/service/assets/console/`: HTML, a small
//! script and a style sheet, embedded; no framework, nothing from another origin) over the admin
//! API, behind the admin token ([`auth`]). Its views: destinations (switch on/off, counts, a rate
//! chart), the event log and each event's journey, dead letters, and the mapping preview
//! ([`preview`]: `POST /admin/preview`, the same pipeline as `map`).
//!
//! Routes: `GET /console` (the page; without the token the login form, 401),
//! `GET /console/console.js`, `GET /console/console.css`, `GET /console/samples.ndjson` (the
//! preview's sample events), `POST /console/login` (a form with
//! `token`: sets the cookie, 303 to `/console`; a wrong token gets the form again, 401; more
//! than [`auth::LOGINS_PER_MINUTE`] tries a minute from one address, 429 with `Retry-After`),
//! `POST /console/logout`, `POST /admin/preview`. Mounted only when `server.admin` is set
//! (the pages only with `server.admin.console`, the default).

pub mod auth;
pub mod preview;

use crate::serve::app::App;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;

/// The page (`assets/console/index.html`).
pub const INDEX_HTML: &str = include_str!("../../assets/console/index.html");
/// Its script (`assets/console/console.js`).
pub const CONSOLE_JS: &str = include_str!("../../assets/console/console.js");
/// Its style sheet (`assets/console/console.css`).
pub const CONSOLE_CSS: &str = include_str!("../../assets/console/console.css");

/// The sample events the preview offers (`examples/events.ndjson`, one per line).
pub const SAMPLES: &str = include_str!("../../../../examples/events.ndjson");

/// The console's pages load nothing from another origin and cannot be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// The login form carries its few styles inline (the style sheet is behind the token).
pub(crate) const LOGIN_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
                                    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The console's routes and `/admin/preview`, every one but the login behind the admin token.
/// `pages`: whether the console's pages are served (`server.admin.console`).
pub fn routes(app: Arc<App>, pages: bool) -> Router<Arc<App>> {
    let mut guarded = Router::new().route("/admin/preview", post(preview::preview));
    if pages {
        guarded = guarded
            .route("/console", get(index))
            .route("/console/console.js", get(script))
            .route("/console/console.css", get(style))
            .route("/console/samples.ndjson", get(samples))
            .route("/console/logout", post(logout));
    }
    let guarded = guarded.layer(axum::middleware::from_fn_with_state(app, auth::require));
    let open = match pages {
        true => {
            let limit = Arc::new(auth::LoginLimit::default());
            let login = move |app, client, body| login(app, client, body, limit);
            Router::new().route("/console/login", post(login))
        }
        false => Router::new(),
    };
    guarded.merge(open)
}

/// Headers of every console answer: not cached, not sniffed, not framed, no referrer.
pub(crate) fn page_headers(headers: &mut HeaderMap, csp: &'static str) {
    let set = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, csp),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    page_headers(r.headers_mut(), CSP);
    r
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> Response {
    asset("application/javascript; charset=utf-8", CONSOLE_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}

async fn samples() -> Response {
    asset("application/x-ndjson", SAMPLES)
}

/// `POST /console/login`: a form (`application/x-www-form-urlencoded`) with `token`; over the
/// client's login limit, 429 with `Retry-After` (the token is not looked at).
async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: Bytes,
    limit: Arc<auth::LoginLimit>,
) -> Response {
    if let Err(wait) = limit.check(client.ip()) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut r = auth::login_form(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many tries from your address: try again in {secs} seconds."),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return r;
    }
    let token = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned());
    let Some(token) = token.filter(|t| auth::is_token(&app, t)) else {
        return auth::login_form(
            StatusCode::UNAUTHORIZED,
            "That token is not the admin token.",
        );
    };
    let mut r = Redirect::to("/console").into_response();
    cookie(&mut r, Some(&token));
    r
}

/// `POST /console/logout`: forgets the cookie, back to the login form.
async fn logout() -> Response {
    let mut r = Redirect::to("/console").into_response();
    cookie(&mut r, None);
    r
}

fn cookie(r: &mut Response, token: Option<&str>) {
    match HeaderValue::from_str(&auth::set_cookie(token)) {
        Ok(v) => {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        // Percent-encoded, the value is always a valid header; should it not be, no cookie is
        // set and the login form shows again.
        Err(_) => tracing::error!("the console's cookie is not a valid header value"),
    }
}
