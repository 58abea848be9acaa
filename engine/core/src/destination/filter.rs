//! Destination filters: named conditions that keep events from a destination.

use crate::rules::condition::CompiledCondition;
use crate::rules::spec::Condition;
use crate::rules::{CompileError, Pointer};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// A filter: drop the events that meet a condition, or keep only those.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Shown in the output of every event this filter stops.
    pub name: String,
    /// Only events with these names are checked (all events when absent).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(flatten)]
    pub rule: FilterRule,
}

/// What the filter does with the events its condition selects.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterRule {
    /// Drop the events that meet this condition.
    DropWhen(Condition),
    /// Keep only the events that meet this condition.
    KeepWhen(Condition),
}

#[derive(Debug, Clone)]
pub struct CompiledFilter {
    pub name: Arc<str>,
    events: Option<Vec<String>>,
    drop: bool,
    condition: CompiledCondition,
}

impl CompiledFilter {
    pub fn compile(filter: &Filter, at: &Pointer) -> Result<Self, Vec<CompileError>> {
        let (drop, cond, key) = match &filter.rule {
            FilterRule::DropWhen(c) => (true, c, "drop_when"),
            FilterRule::KeepWhen(c) => (false, c, "keep_when"),
        };
        Ok(Self {
            name: filter.name.as_str().into(),
            events: filter.events.clone(),
            drop,
            condition: CompiledCondition::compile(cond, &at.key(key))?,
        })
    }

    /// Whether this filter stops the event.
    pub fn stops(&self, event_name: &str, event: &Value) -> bool {
        if let Some(events) = &self.events
            && !events.iter().any(|e| e == event_name)
        {
            return false;
        }
        self.condition.holds(event) == self.drop
    }
}
