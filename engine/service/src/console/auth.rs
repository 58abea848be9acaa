//! The console's side of the admin token: the login form (the answer to `GET /console` without
//! the token), the cookie `POST /console/login` sets, and the layer in front of the console's
//! routes. The check itself is the admin API's ([`crate::admin::auth`]): `Authorization: Bearer
//! TOKEN` or the `switchyard_admin` cookie, compared in constant time.
//!
//! Logins are limited per client address ([`LoginLimit`]): [`LOGINS_PER_MINUTE`] tries, then 429
//! with `Retry-After` until the next one is allowed, so the token cannot be guessed at speed.

use crate::admin::auth::{COOKIE, authorized, require_token, same_token};
use crate::serve::app::App;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Login tries per client address per minute (a burst of this many, then one every
/// `60 / LOGINS_PER_MINUTE` seconds), right or wrong: the limit is checked before the token.
pub const LOGINS_PER_MINUTE: u32 = 10;

/// Client addresses remembered before the ones that are back under their limit are forgotten.
const REMEMBERED_CLIENTS: usize = 4096;

/// The login limit of the console, per client address.
pub struct LoginLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl Default for LoginLimit {
    fn default() -> Self {
        let per_minute = NonZeroU32::new(LOGINS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
        }
    }
}

impl LoginLimit {
    /// Counts a login try from `client`: `Err` with the wait until the next is allowed when it
    /// is over the limit.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() > REMEMBERED_CLIENTS {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_past_the_limit_wait_and_other_addresses_do_not() {
        let limit = LoginLimit::default();
        let one: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..LOGINS_PER_MINUTE {
            assert_eq!(limit.check(one), Ok(()));
        }
        let wait = limit.check(one).expect_err("over the limit");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(6),
            "{wait:?}"
        );
        assert_eq!(limit.check([127, 0, 0, 2].into()), Ok(()));
    }
}
