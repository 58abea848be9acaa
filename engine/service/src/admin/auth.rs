//! The admin token check shared by every `/admin/*` and `/console*` route: `Authorization: Bearer
//! TOKEN` or the cookie `switchyard_admin=TOKEN`, compared in constant time. A request without it
//! gets `401 {"error": ...}`. The token is never logged or echoed.

use crate::serve::app::{App, error};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The cookie the console's login sets.
pub const COOKIE: &str = "switchyard_admin";

/// What a refused request is told (the same whether the token was missing or wrong).
const REFUSED: &str =
    "the admin API needs its token: `Authorization: Bearer TOKEN` (server.admin.token)";

/// Whether `offered` is `token`, in time that does not depend on where they differ.
pub fn same_token(offered: &str, token: &str) -> bool {
    offered.as_bytes().ct_eq(token.as_bytes()).into()
}

/// The token a request offers: its bearer token, else its `switchyard_admin` cookie.
pub fn offered(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme's name is case-insensitive (RFC 9110, 11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
        .map(|(_, token)| token.trim());
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == COOKIE).then_some(value)
            })
    })
}

/// Whether the request carries the admin token (false when the admin API is off).
pub fn authorized(app: &App, headers: &HeaderMap) -> bool {
    match (&app.admin_token, offered(headers)) {
        (Some(token), Some(offered)) => same_token(offered, token),
        _ => false,
    }
}

/// Middleware: lets a request with the admin token through; answers 401 to any other.
pub async fn require_token(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if authorized(&app, request.headers()) {
        next.run(request).await
    } else {
        error(StatusCode::UNAUTHORIZED, REFUSED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_token_is_taken_from_the_bearer_header_or_the_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(offered(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; switchyard_admin=t1"),
        );
        assert_eq!(offered(&h), Some("t1"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t2"));
        assert_eq!(offered(&h), Some("t2"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer t3"));
        assert_eq!(offered(&h), Some("t3"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic t2"));
        assert_eq!(offered(&h), Some("t1"));
    }

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(same_token("secret-token", "secret-token"));
        assert!(!same_token("secret-tokeN", "secret-token"));
        assert!(!same_token("secret", "secret-token"));
        assert!(!same_token("", "secret-token"));
    }
}
