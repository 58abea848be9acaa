//! A round's journeys, while someone watches ([`crate::observe`]): published as planned, again at
//! each try of a send that will be tried again (the leg is `retry`), updated with each batch's
//! answer, and published once more when the round's batches have all answered.

use super::Sent;
use crate::clock::unix_now;
use crate::observe::{Attempt, Journey, LegStatus, Observer, rfc3339};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The journeys of one round, shared by its send tasks.
pub type Shared = Arc<Mutex<RoundJourneys>>;

/// The journeys of one round.
pub struct RoundJourneys {
    observer: Arc<Observer>,
    journeys: Vec<Journey>,
    /// Record index in the round → the position of its journey in `journeys`.
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

    /// The round's journeys, to share with its send tasks.
    pub fn shared(self) -> Shared {
        Arc::new(Mutex::new(self))
    }

    /// The leg at `destination` of the journey of record `record`.
    fn leg(&mut self, record: usize, destination: &str) -> Option<&mut crate::observe::Leg> {
        let j = self
            .by_record
            .get(&record)
            .and_then(|&p| self.journeys.get_mut(p))?;
        j.destinations
            .iter_mut()
            .find(|l| l.destination == destination)
    }

    /// A try that carried `records`' payloads to `destination` failed and will be tried again:
    /// their legs are `retry`, with the attempt; their journeys are published now.
    pub fn retrying(
        &mut self,
        destination: &str,
        records: &BTreeSet<usize>,
        reason: &str,
        code: Option<i64>,
    ) {
        let at = rfc3339(unix_now());
        for &record in records {
            let Some(leg) = self.leg(record, destination) else {
                continue;
            };
            leg.status = LegStatus::Retry;
            leg.attempts.push(Attempt {
                at: at.clone(),
                outcome: "retry",
                code,
                message: Some(reason.to_owned()),
            });
            if let Some(j) = self
                .by_record
                .get(&record)
                .and_then(|&p| self.journeys.get(p))
            {
                self.observer.publish(j.clone());
            }
        }
    }

    /// Settles the legs a batch's answer concerns: `success`, or `dead_lettered` with the reason
    /// and the platform's code (`code_in` reads it from the reason). One refused payload of an
    /// event dead-letters it there.
    pub fn answered(&mut self, sent: &Sent, code_in: &dyn Fn(&str) -> Option<i64>) {
        let (name, fates) = sent;
        let at = rfc3339(unix_now());
        for (record, fate) in fates {
            let Some(leg) = self.leg(*record, name) else {
                continue;
            };
            let attempt = match fate {
                Ok(()) => {
                    if matches!(leg.status, LegStatus::Pending | LegStatus::Retry) {
                        leg.status = LegStatus::Success;
                    }
                    Attempt {
                        at: at.clone(),
                        outcome: "sent",
                        code: None,
                        message: None,
                    }
                }
                Err(gave_up) => {
                    leg.status = LegStatus::DeadLettered;
                    leg.reason = Some(gave_up.reason.clone());
                    Attempt {
                        at: at.clone(),
                        outcome: "refused",
                        code: code_in(&gave_up.reason),
                        message: Some(gave_up.reason.clone()),
                    }
                }
            };
            leg.attempts.push(attempt);
        }
    }

    /// Publishes the journeys that were sent somewhere (their legs are settled now).
    pub fn finish(&mut self) {
        for j in self.journeys.drain(..) {
            if j.destinations.iter().any(|l| !l.attempts.is_empty()) {
                self.observer.publish(j);
            }
        }
    }
}
