//! A batch through one plugin, with a second pass: one poison event must not fail its neighbours.
//!
//! The batch goes to the plugin in one call ([`Plugin::call_batch`]). When that call fails in a way
//! one event can cause (a trap, the time budget, the memory cap, output over the limit: see
//! [`CallError::may_come_from_one_event`]), the instance is already gone (a fresh one serves the
//! next call) and the batch's events are run again **one at a time**, each in a call of its own
//! with the whole time budget and output limit (the memory cap bounds the instance, which serves
//! the next event after a success and is replaced after a failure). Only the events on which the
//! plugin fails alone fail, each with its own reason; the others get the plugin's answer.
//!
//! A plugin that fails on everything would cost a fresh instance per event: the second pass stops
//! after [`MAX_CONSECUTIVE_FAILURES`] failed calls in a row and fails the rest of the batch with
//! [`EventFailure::NotRetried`]. A failure no single event causes (a wrong result count, a refused
//! config) fails the whole batch, as it would in the first pass.
//!
//! Why one at a time rather than bisection: a call of one event is cheap, while every failed call
//! costs an instantiation (and, for a timeout, a whole time budget). Bisection makes fewer calls
//! but fails a poison event once per level; one at a time fails it once, and gives each event its
//! own budget and its own verdict. The second pass runs only when a batch failed: the happy path
//! pays nothing (its results are handed on as the plugin returned them, [`BatchResults::OneCall`]).

use crate::bindings::Action;
use crate::error::CallError;
use crate::plugin::Plugin;
use crate::sandbox::{LogLine, MAX_LOG_LINES};

/// In the second pass, after this many failed calls in a row the remaining events of the batch are
/// not run: a plugin that fails on everything costs at most this many instantiations per batch.
pub const MAX_CONSECUTIVE_FAILURES: usize = 8;

/// Why an event of a batch did not get an action from the plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventFailure {
    /// The plugin returned this error for the event (its own message).
    #[error("{0}")]
    Returned(String),
    /// The call with this event alone failed (the second pass): it trapped, ran out of its time
    /// or memory, or returned too much.
    #[error(transparent)]
    Call(CallError),
    /// The second pass had stopped before this event ([`MAX_CONSECUTIVE_FAILURES`] failed calls in
    /// a row); the batch call had failed with `batch`.
    #[error(
        "not retried alone: the plugin failed on {MAX_CONSECUTIVE_FAILURES} events in a row when run one at a time, after its batch call {batch}"
    )]
    NotRetried { batch: CallError },
}

impl EventFailure {
    /// The reason as text; the plugin's own message is handed on, not copied.
    pub fn into_message(self) -> String {
        match self {
            Self::Returned(message) => message,
            other => other.to_string(),
        }
    }
}

/// What a batch came to: one result per event, in order, and the log lines written meanwhile (at
/// most [`MAX_LOG_LINES`] over both passes).
#[derive(Debug)]
pub struct BatchOutput {
    pub results: BatchResults,
    pub logs: Vec<LogLine>,
}

/// One result per event, in order. When the batch call succeeded, its results are kept as the
/// plugin returned them and read through [`BatchResults::into_iter`]: the happy path converts and
/// copies nothing.
#[derive(Debug)]
pub enum BatchResults {
    /// The batch call succeeded: an error is the plugin's own message.
    OneCall(Vec<Result<Action, String>>),
    /// The batch call failed and the events were run one at a time.
    OneAtATime(Vec<Result<Action, EventFailure>>),
}

impl BatchResults {
    pub fn len(&self) -> usize {
        match self {
            Self::OneCall(r) => r.len(),
            Self::OneAtATime(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the plugin left the `i`-th event `unchanged`.
    pub fn is_unchanged(&self, i: usize) -> bool {
        match self {
            Self::OneCall(r) => matches!(r.get(i), Some(Ok(Action::Unchanged))),
            Self::OneAtATime(r) => matches!(r.get(i), Some(Ok(Action::Unchanged))),
        }
    }
}

impl IntoIterator for BatchResults {
    type Item = Result<Action, EventFailure>;
    type IntoIter = IntoResults;

    fn into_iter(self) -> IntoResults {
        match self {
            Self::OneCall(r) => IntoResults::OneCall(r.into_iter()),
            Self::OneAtATime(r) => IntoResults::OneAtATime(r.into_iter()),
        }
    }
}

/// The results of a batch, in order (see [`BatchResults`]).
#[derive(Debug)]
pub enum IntoResults {
    OneCall(std::vec::IntoIter<Result<Action, String>>),
    OneAtATime(std::vec::IntoIter<Result<Action, EventFailure>>),
}

impl Iterator for IntoResults {
    type Item = Result<Action, EventFailure>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::OneCall(r) => r.next().map(|r| r.map_err(EventFailure::Returned)),
            Self::OneAtATime(r) => r.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::OneCall(r) => r.size_hint(),
            Self::OneAtATime(r) => r.size_hint(),
        }
    }
}

impl ExactSizeIterator for IntoResults {}

impl Plugin {
    /// Transforms a batch of events (JSON texts): one call, and the second pass when that call
    /// failed in a way one event can cause (see the module). An error fails the whole batch: a
    /// failure no single event causes, or a batch of one event whose call failed.
    pub fn transform_batch(&self, events: &[String]) -> Result<BatchOutput, CallError> {
        match self.call_batch(events) {
            Ok(out) => Ok(BatchOutput {
                results: BatchResults::OneCall(out.results),
                logs: out.logs,
            }),
            Err(batch) if events.len() > 1 && batch.may_come_from_one_event() => {
                self.one_at_a_time(events, batch)
            }
            Err(e) => Err(e),
        }
    }

    /// The second pass: each event in a call of its own, until [`MAX_CONSECUTIVE_FAILURES`]
    /// calls in a row failed.
    fn one_at_a_time(&self, events: &[String], batch: CallError) -> Result<BatchOutput, CallError> {
        let mut results = Vec::with_capacity(events.len());
        let mut logs = Vec::new();
        let mut in_a_row = 0;
        for event in events {
            if in_a_row >= MAX_CONSECUTIVE_FAILURES {
                results.push(Err(EventFailure::NotRetried {
                    batch: batch.clone(),
                }));
                continue;
            }
            match self.call_batch(std::slice::from_ref(event)) {
                Ok(out) => {
                    in_a_row = 0;
                    let room = MAX_LOG_LINES.saturating_sub(logs.len());
                    logs.extend(out.logs.into_iter().take(room));
                    let returned = out.results.into_iter();
                    results.extend(returned.map(|r| r.map_err(EventFailure::Returned)));
                }
                Err(e) if e.may_come_from_one_event() => {
                    in_a_row += 1;
                    results.push(Err(EventFailure::Call(e)));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(BatchOutput {
            results: BatchResults::OneAtATime(results),
            logs,
        })
    }
}
