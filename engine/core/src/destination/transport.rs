//! How a destination plugin sends one request body to its platform, and the answer in the generic
//! terms delivery works with: delivered; worth another try (after how long, when the platform
//! says); refused for good; this destination's access refused (every request will fail the same
//! way); some events refused, each by its index in the body's events; or refused because of an
//! event the platform did not name. Delivery owns the retries, rate and concurrency limits, and
//! what to do with the rest of a body when some of its events are refused; a transport sends once
//! and classifies.

use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A send in progress.
pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// Sends request bodies built by [`super::DestinationPlugin::request_body`].
pub trait Transport: Send + Sync {
    /// Sends one body, once.
    fn send<'a>(&'a self, body: &'a Value) -> Sending<'a>;

    /// Takes the events back out of a body that was sent (in the order given to `request_body`),
    /// so that delivery can send some of them again without having kept a copy. `None` when the
    /// body does not hold them as the destination builds bodies (a bug).
    fn take_events(&self, body: Value) -> Option<Vec<Value>>;

    /// The platform's answer code that a reason of this transport's [`SendError`]s carries in its
    /// words (TikTok's `40002`), for whoever shows it as a field of its own; `None` when it
    /// carries none (the default).
    fn code_in(&self, _reason: &str) -> Option<i64> {
        None
    }
}

/// Why a request was not (wholly) delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again: after `retry_after` when the platform said so.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Trying again will not help (bad parameters): the body's events go to the dead letters.
    #[error("{reason}")]
    Permanent { reason: String },
    /// The platform refuses this destination itself (a bad access token, no permission on the
    /// account): permanent for the body, and every later request will fail the same way until the
    /// destination's config changes, so delivery reports it loudly.
    #[error("{reason}")]
    Denied { reason: String },
    /// The platform refused some of the body's events for good, each named by its index in the
    /// body's events (the order they were given to `request_body`) with the platform's reason;
    /// `others` says what became of the events it did not name.
    #[error("{} events refused", refused.len())]
    Refused {
        refused: Vec<Refusal>,
        others: Others,
    },
    /// The platform refused the whole body because of some event in it, without saying which:
    /// delivery splits the body to find it.
    #[error("{reason}")]
    Unattributed { reason: String },
}

/// One event refused for good: its index in the body's events, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub index: usize,
    pub reason: String,
}

/// What became of the events of a body that an answer did not refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Others {
    /// They were delivered (a partial success).
    Delivered,
    /// They were not processed (the platform fails a body for one bad event): send them again.
    NotSent,
}

/// Why a transport could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A secret that sending needs is not set (its variable's name, never its value).
    #[error("the environment variable {0} is not set")]
    MissingSecret(String),
    #[error("cannot build the HTTP client")]
    Http(#[source] Box<dyn std::error::Error + Send + Sync>),
}
