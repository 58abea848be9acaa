//! How a destination delivers: its rate and concurrency limits, its request timeout and how it
//! retries. Every destination type has these settings (under `delivery:`), with defaults that suit a
//! conversion API.

use schemars::JsonSchema;
use serde::Deserialize;

/// Delivery settings of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// Requests per second at most (keep under the platform's QPS).
    #[serde(default = "default_rate")]
    #[schemars(range(min = 0.1, max = 10000.0))]
    pub max_requests_per_second: f64,
    /// Requests in flight at most.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 256))]
    pub max_concurrency: usize,
    /// Time allowed for one request, in milliseconds.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 100, max = 300000))]
    pub timeout_ms: u64,
    /// Tries per request (the first included) before its events go to the dead letters.
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: u32,
    /// The first retry's wait, in milliseconds; each retry doubles it (with jitter) up to
    /// `max_backoff_ms`. A `Retry-After` from the platform is honoured when longer, up to
    /// `max_backoff_ms`.
    #[serde(default = "default_backoff")]
    #[schemars(range(min = 1, max = 600000))]
    pub initial_backoff_ms: u64,
    /// The longest wait between tries, in milliseconds.
    #[serde(default = "default_max_backoff")]
    #[schemars(range(min = 1, max = 3600000))]
    pub max_backoff_ms: u64,
}

fn default_rate() -> f64 {
    50.0
}
fn default_concurrency() -> usize {
    8
}
fn default_timeout() -> u64 {
    10_000
}
fn default_attempts() -> u32 {
    8
}
fn default_backoff() -> u64 {
    200
}
fn default_max_backoff() -> u64 {
    60_000
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            max_requests_per_second: default_rate(),
            max_concurrency: default_concurrency(),
            timeout_ms: default_timeout(),
            max_attempts: default_attempts(),
            initial_backoff_ms: default_backoff(),
            max_backoff_ms: default_max_backoff(),
        }
    }
}
