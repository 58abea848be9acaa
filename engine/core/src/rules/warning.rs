//! A warning about one payload field, reported beside the payload: by the field plans, the check
//! of the platform's types ([`super::field_types`]) and destination plugins.

use serde::Serialize;
use std::sync::Arc;

/// A field that could not be built as the rules ask (left out of the payload), or that the
/// destination finds wrong or missing: reported beside the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The payload field (`user.phone`, `properties.contents[1].content_id`), or the event's field
    /// a destination needs (`properties.$is_new_customer`).
    pub field: Arc<str>,
    /// What went wrong; never the value itself.
    pub message: &'static str,
}
