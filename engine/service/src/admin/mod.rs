//! The admin API (`/admin/*`, only when `server.admin` is set): destinations switched on and off
//! at run time, dead letters listed, retried and dropped while the service runs, the journal of
//! recent events, the live tap, reload; every route behind the admin token ([`auth`]). [`api`]:
//! the JSON handlers; [`tap`]: the live stream. The contract is in
//! docs/operations.md; the web console (`/console`) reuses [`auth`].

pub mod api;
pub mod auth;
pub mod tap;

use crate::serve::app::App;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// The admin routes, each behind the token.
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/admin/destinations", get(api::destinations))
        .route("/admin/destinations/{name}/activate", post(api::activate))
        .route(
            "/admin/destinations/{name}/deactivate",
            post(api::deactivate),
        )
        .route("/admin/dead-letters", get(api::list_dead_letters))
        .route("/admin/dead-letters/retry", post(api::retry_dead_letters))
        .route("/admin/dead-letters/drop", post(api::drop_dead_letters))
        .route("/admin/events", get(api::events))
        .route("/admin/events/{id}", get(api::event))
        .route("/admin/tap", get(tap::tap))
        .route("/admin/reload", post(api::reload))
        .route_layer(axum::middleware::from_fn_with_state(
            app,
            auth::require_token,
        ))
}
