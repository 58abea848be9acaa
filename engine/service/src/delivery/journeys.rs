//! A round's journeys, while someone watches ([`crate::observe`]): published as planned, updated
//! with each batch's answer, published again once the round's batches have all answered.

use super::Sent;
use crate::clock::unix_now;
use crate::observe::{Attempt, Journey, Observer, rfc3339};
use std::collections::HashMap;
use std::sync::Arc;

/// The journeys of one round.
pub struct RoundJourneys {
    observer: Arc<Observer>,
    journeys: Vec<Journey>,
    /// Record index in the round → the positions of its journey in `journeys`.
    by_record: HashMap<usize, usize>,
}

impl RoundJourneys {
    /// Gives the planned journeys their ids and publishes them.
    pub fn begin(observer: Arc<Observer>, planned: Vec<(usize, Journey)>) -> Self {
        let mut by_record = HashMap::with_capacity(planned.len());
        let mut journeys = Vec::with_capacity(planned.len());
        for (record, mut j) in planned {
            j.id = observer.next_id();
            observer.publish(j.clone());
            by_record.insert(record, journeys.len());
            journeys.push(j);
        }
        Self {
            observer,
            journeys,
            by_record,
        }
    }

    /// Settles the legs a batch's answer concerns: `success`, or `dead_lettered` with the reason
    /// (one refused payload of an event dead-letters it there).
    pub fn answered(&mut self, sent: &Sent) {
        let (name, fates) = sent;
        let at = rfc3339(unix_now());
        for (record, fate) in fates {
            let Some(j) = self
                .by_record
                .get(record)
                .and_then(|&p| self.journeys.get_mut(p))
            else {
                continue;
            };
            let Some(leg) = j.destinations.iter_mut().find(|l| &l.destination == name) else {
                continue;
            };
            let attempt = match fate {
                Ok(()) => {
                    if leg.status == "pending" {
                        leg.status = "success";
                    }
                    Attempt {
                        at: at.clone(),
                        outcome: "sent",
                        message: None,
                    }
                }
                Err(gave_up) => {
                    leg.status = "dead_lettered";
                    leg.reason = Some(gave_up.reason.clone());
                    Attempt {
                        at: at.clone(),
                        outcome: "refused",
                        message: Some(gave_up.reason.clone()),
                    }
                }
            };
            leg.attempts.push(attempt);
        }
    }

    /// Publishes the journeys that were sent somewhere (their legs are settled now).
    pub fn finish(self) {
        for j in self.journeys {
            if j.destinations.iter().any(|l| !l.attempts.is_empty()) {
                self.observer.publish(j);
            }
        }
    }
}
