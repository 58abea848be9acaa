//! Sends one destination's request bodies: under its rate limit (requests per second) and
//! concurrency limit, retrying retryable failures with exponential backoff and full jitter (a
//! `Retry-After` from the platform wins when longer), until it is delivered or given up on.

use crate::metrics::Metrics;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_core::destination::{Delivery, SendError, Transport};
use tokio::sync::Semaphore;

/// One destination's sender.
pub struct Sender {
    name: String,
    transport: Box<dyn Transport>,
    settings: Delivery,
    limiter: DefaultDirectRateLimiter,
    slots: Semaphore,
    metrics: Arc<Metrics>,
}

/// Why a request's events were given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp {
    pub reason: String,
}

impl Sender {
    pub fn new(
        name: &str,
        transport: Box<dyn Transport>,
        settings: Delivery,
        metrics: Arc<Metrics>,
    ) -> Self {
        let period = Duration::from_secs_f64(1.0 / settings.max_requests_per_second.max(0.001));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MIN));
        Self {
            name: name.to_owned(),
            transport,
            settings,
            limiter: RateLimiter::direct(quota),
            slots: Semaphore::new(settings.max_concurrency.max(1)),
            metrics,
        }
    }

    /// Sends `body` (holding `events` events) until delivered, a permanent error, or the last try.
    pub async fn deliver(&self, body: &Value, events: u64) -> Result<(), GaveUp> {
        let mut attempt = 1;
        loop {
            let result = {
                let _slot = self.slots.acquire().await.map_err(|_| GaveUp {
                    reason: "shutting down".into(),
                })?;
                self.limiter.until_ready().await;
                let started = Instant::now();
                let r = self.transport.send(body).await;
                self.metrics
                    .request_seconds
                    .observe(started.elapsed().as_secs_f64());
                r
            };
            let requests = |result: &str| {
                self.metrics
                    .requests
                    .with_label_values(&[self.name.as_str(), result])
                    .inc()
            };
            match result {
                Ok(()) => {
                    requests("ok");
                    return Ok(());
                }
                Err(SendError::Permanent { reason }) => {
                    requests("permanent");
                    return Err(GaveUp { reason });
                }
                Err(SendError::Retryable {
                    reason,
                    retry_after,
                }) => {
                    requests("retryable");
                    if attempt >= self.settings.max_attempts {
                        return Err(GaveUp {
                            reason: format!("gave up after {attempt} tries: {reason}"),
                        });
                    }
                    self.metrics.event(&self.name, "retried", events);
                    tokio::time::sleep(self.backoff(attempt, retry_after)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// The wait before try `attempt + 1`: full jitter over an exponential ceiling, or the
    /// platform's `Retry-After` when that is longer.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .settings
            .initial_backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
            .min(self.settings.max_backoff_ms);
        let jittered = Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling));
        retry_after.map_or(jittered, |r| r.max(jittered))
    }
}
