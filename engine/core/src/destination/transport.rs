//! How a destination plugin sends one request body to its platform, and the answer in the generic
//! terms delivery works with: delivered, worth another try (after how long, when the platform
//! says), or refused for good. Delivery owns the retries, rate and concurrency limits; a transport
//! sends once and classifies.

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
}

/// Why a request was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again: after `retry_after` when the platform said so.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Trying again will not help (bad token, bad parameters): the events go to the dead letters.
    #[error("{reason}")]
    Permanent { reason: String },
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
