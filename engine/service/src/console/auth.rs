//! The admin token check the console's pages and `/admin/preview` sit behind: `Authorization:
//! Bearer TOKEN` or the `switchyard_admin` cookie that `POST /console/login` sets, compared in
//! constant time. Missing or wrong: 401 (`{"error": ...}`, or the login form for `GET /console`).
//! One layer ([`require`]), so that the admin API's own check can take its place.

use crate::serve::app::{App, error};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The cookie that carries the token (HttpOnly, SameSite=Strict, Path=/).
pub const COOKIE: &str = "switchyard_admin";

/// The login form (`engine/service/assets/console/login.html`); `{{MESSAGE}}` says why it shows.
const LOGIN_HTML: &str = include_str!("../../assets/console/login.html");

/// Whether `given` is the configured admin token. Never true when `server.admin` is absent or
/// its variable is not set.
pub fn is_token(app: &App, given: &str) -> bool {
    let Some(token) = app
        .loaded
        .config
        .server
        .admin
        .as_ref()
        .and_then(|a| a.token.expose())
    else {
        return false;
    };
    bool::from(token.as_bytes().ct_eq(given.as_bytes()))
}

/// The token a request carries: its bearer token, else its cookie.
fn presented(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    bearer.or_else(|| cookie(headers))
}

/// The value of the [`COOKIE`] cookie (percent-decoded, as [`set_cookie`] encodes it).
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| {
            form_urlencoded::parse(format!("t={value}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .next()
        })
}

/// The `Set-Cookie` value that keeps `token` in the browser for the console (cleared with `None`).
pub fn set_cookie(token: Option<&str>) -> String {
    match token {
        Some(t) => {
            let value: String = form_urlencoded::byte_serialize(t.as_bytes()).collect();
            format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/")
        }
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    }
}

/// The login form with `message` (HTML-escaped), answered with `status`.
pub fn login_form(status: StatusCode, message: &str) -> Response {
    let page = LOGIN_HTML.replace("{{MESSAGE}}", &escape(message));
    let mut r = (status, Html(page)).into_response();
    super::page_headers(r.headers_mut(), super::LOGIN_CSP);
    r
}

/// `text` safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The layer: lets a request with the admin token through; else 401 (the login form for a page
/// a browser asks for, JSON for the rest).
pub async fn require(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if presented(request.headers()).is_some_and(|t| is_token(&app, &t)) {
        return next.run(request).await;
    }
    let is_page = request.method() == Method::GET && request.uri().path() == "/console";
    if is_page {
        return login_form(StatusCode::UNAUTHORIZED, "");
    }
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "the admin token is missing or wrong: send `Authorization: Bearer TOKEN` (server.admin.token)",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}
