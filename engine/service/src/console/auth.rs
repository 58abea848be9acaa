//! The console's side of the admin token: the login form (the answer to `GET /console` without
//! the token), the cookie `POST /console/login` sets, and the layer in front of the console's
//! routes. The check itself is the admin API's ([`crate::admin::auth`]): `Authorization: Bearer
//! TOKEN` or the `switchyard_admin` cookie, compared in constant time.

use crate::admin::auth::{COOKIE, authorized, require_token, same_token};
use crate::serve::app::App;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use std::sync::Arc;

/// The login form (`engine/service/assets/console/login.html`); `{{MESSAGE}}` says why it shows.
const LOGIN_HTML: &str = include_str!("../../assets/console/login.html");

/// Whether `offered` is the admin token (never when the admin API is off).
pub fn is_token(app: &App, offered: &str) -> bool {
    app.admin_token
        .as_deref()
        .is_some_and(|token| same_token(offered, token))
}

/// The `Set-Cookie` value that keeps `token` in the browser for the console (cleared with `None`).
pub fn set_cookie(token: Option<&str>) -> String {
    match token {
        Some(t) => format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/"),
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

/// The layer: the admin API's check, except that a browser asking for the page without the token
/// gets the login form (401) instead of JSON.
pub async fn require(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let is_page = request.method() == Method::GET && request.uri().path() == "/console";
    if is_page && !authorized(&app, request.headers()) {
        return login_form(StatusCode::UNAUTHORIZED, "");
    }
    require_token(State(app), request, next).await
}
