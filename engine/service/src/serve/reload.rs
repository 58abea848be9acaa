//! Reload (SIGHUP, `POST /admin/reload`): reads the config file again and checks it whole first;
//! on an error the running config stays and the error is logged (file:line); else rules,
//! destinations, plugins and sources (their keys) switch for the next request and the next
//! delivery round. Nothing queued is touched; requests and rounds in flight finish with the config
//! they started with. Settings that only a restart can change (where it listens, the queue and its
//! limits, de-duplication, the admin API) keep their running values, with a warning.
//!
//! A reload reads each destination's `status` from the file again (undoing run-time switches) and
//! starts its rate limit afresh.

use crate::config::{self, ServerConfig};
use crate::delivery::{DeliveryError, Running};
use crate::serve::app::App;
use std::sync::Arc;
use switchyard_core::load::Diagnostic;

/// Why a reload kept the running config.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config does not load: every error, each with its file:line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Diagnostic>),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("the reload did not finish (a panic while loading)")]
    Panicked,
}

/// Reloads `app`'s config file (see the module's documentation); the warnings of the new config
/// and the settings that need a restart are logged.
pub async fn reload(app: Arc<App>) -> Result<(), ReloadError> {
    let _one_at_a_time = app.reloading.lock().await;
    let path = app.loaded().path.clone();
    let loading = tokio::task::spawn_blocking(move || config::load(&path));
    let result = match loading.await {
        Ok(Ok(new)) => switch(&app, new),
        Ok(Err(errors)) => Err(ReloadError::Invalid(errors)),
        Err(_) => Err(ReloadError::Panicked),
    };
    match &result {
        Ok(()) => tracing::info!("config reloaded"),
        Err(ReloadError::Invalid(errors)) => {
            for e in errors {
                tracing::error!("reload refused, the running config stays: {e}");
            }
        }
        Err(e) => tracing::error!("reload failed, the running config stays: {e}"),
    }
    result
}

/// Switches to `new`, keeping the running values of the settings that need a restart.
fn switch(app: &App, mut new: config::Loaded) -> Result<(), ReloadError> {
    let old = app.loaded();
    for name in keep_restart_settings(&old.config.server, &mut new.config.server) {
        tracing::warn!(
            "server.{name} changed: it takes effect only after a restart; the running value stays"
        );
    }
    for w in &new.warnings {
        tracing::warn!("{w}");
    }
    let new = Arc::new(new);
    let running = Running::new(new.clone(), &app.metrics)?;
    app.deliverer.replace(running);
    app.replace(new);
    Ok(())
}

/// Puts the running values of the settings only a restart changes into `new`; returns the names
/// of those that differed.
pub fn keep_restart_settings(old: &ServerConfig, new: &mut ServerConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! keep {
        ($($field:ident),*) => {$(
            if format!("{:?}", old.$field) != format!("{:?}", new.$field) {
                changed.push(stringify!($field));
                new.$field = old.$field.clone();
            }
        )*};
    }
    keep!(
        listen,
        data_dir,
        queue,
        queue_budget_mib,
        max_body_kib,
        dedup_window_secs,
        dedup_max_ids,
        dedup_max_mib,
        read_timeout_ms,
        body_timeout_ms,
        max_connections,
        shutdown_timeout_ms,
        admin
    );
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_need_a_restart_keep_their_running_values() {
        let old = ServerConfig::default();
        let mut new = ServerConfig {
            listen: "0.0.0.0:9999".into(),
            linger_ms: 5,
            dedup_max_ids: 7,
            max_connections: 9,
            ..ServerConfig::default()
        };
        assert_eq!(
            keep_restart_settings(&old, &mut new),
            ["listen", "dedup_max_ids", "max_connections"]
        );
        assert_eq!(new.max_connections, old.max_connections);
        assert_eq!(new.listen, old.listen);
        assert_eq!(new.dedup_max_ids, old.dedup_max_ids);
        assert_eq!(new.linger_ms, 5, "a setting a reload changes is taken");
    }
}
