//! De-duplication of `event_id`s per source within a time window: a repeated event is accepted
//! (the sender need not retry) but not queued again. Kept in memory: after a restart, a repeat is
//! queued once more, which the platform's own `event_id` de-duplication absorbs.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Ids seen in the window, oldest first for expiry.
pub struct Dedup {
    window: Duration,
    seen: HashMap<(String, String), Instant>,
    order: VecDeque<(Instant, (String, String))>,
}

impl Dedup {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < self.window {
                break;
            }
            if let Some((at, key)) = self.order.pop_front()
                && self.seen.get(&key) == Some(&at)
            {
                self.seen.remove(&key);
            }
        }
    }

    /// Whether `event_id` from `source` was recorded within the window.
    pub fn contains(&mut self, source: &str, event_id: &str) -> bool {
        if self.window.is_zero() {
            return false;
        }
        self.expire(Instant::now());
        self.seen
            .contains_key(&(source.to_owned(), event_id.to_owned()))
    }

    /// Records ids that were queued.
    pub fn record<'a>(&mut self, source: &str, event_ids: impl IntoIterator<Item = &'a str>) {
        if self.window.is_zero() {
            return;
        }
        let now = Instant::now();
        for id in event_ids {
            let key = (source.to_owned(), id.to_owned());
            self.seen.insert(key.clone(), now);
            self.order.push_back((now, key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_repeat_per_source_within_the_window_only() {
        let mut d = Dedup::new(Duration::from_millis(50));
        d.record("web", ["a"]);
        assert!(d.contains("web", "a"));
        assert!(!d.contains("server", "a"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!d.contains("web", "a"));
        let mut off = Dedup::new(Duration::ZERO);
        off.record("web", ["a"]);
        assert!(!off.contains("web", "a"));
    }
}
