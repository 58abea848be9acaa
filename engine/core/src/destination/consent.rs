//! Consent: which category gates a destination, how, and what an event's `$consent` allows.

use crate::event::{ConsentChoice, SourceEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A destination's consent settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// The category of `$consent` (in the profile properties, or the event properties) that
    /// gates this destination.
    #[serde(default)]
    pub category: ConsentCategory,
    /// How the visitor's choice is applied.
    #[serde(default)]
    pub mode: ConsentMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentCategory {
    Analytics,
    #[default]
    Marketing,
}

impl ConsentCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Analytics => "analytics",
            Self::Marketing => "marketing",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMode {
    /// Forward client- and server-side whatever the visitor chose.
    #[default]
    Always,
    /// Forward server-side only, whatever the visitor chose.
    ServerOnly,
    /// Forward unless the visitor denied the category.
    Implied,
    /// Forward only if the visitor granted the category.
    Required,
}

/// What consent allows for one event at one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentVerdict {
    /// Both sides may be sent.
    Both,
    /// Only the server side may be sent.
    ServerOnly,
    /// Nothing may be sent; the reason names the category.
    Refused(&'static str),
}

impl Consent {
    pub fn verdict(&self, event: &SourceEvent) -> ConsentVerdict {
        let choice = || event.consent(self.category.as_str());
        match self.mode {
            ConsentMode::Always => ConsentVerdict::Both,
            ConsentMode::ServerOnly => ConsentVerdict::ServerOnly,
            ConsentMode::Implied | ConsentMode::Required => match (self.mode, choice()) {
                (_, Some(ConsentChoice::Granted)) | (ConsentMode::Implied, None) => {
                    ConsentVerdict::Both
                }
                (_, Some(ConsentChoice::Unreadable)) => ConsentVerdict::Refused(
                    "the visitor's choice is neither `granted` nor `denied`: taken as a denial",
                ),
                (ConsentMode::Implied, _) => ConsentVerdict::Refused("the visitor denied consent"),
                _ => ConsentVerdict::Refused("consent is required and was not granted"),
            },
        }
    }
}
