//! The de-duplication window's bookkeeping, in memory: per (source, `event_id`), whether a copy
//! is being stored (pending) or was stored, and since when. Entries are kept oldest first, so
//! that expiry, and the caps on count and bytes, forget the oldest first. Synchronous: the caller
//! holds it under a mutex, for microseconds at a time, and never across an `.await`.

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as Found;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Bytes an id costs in memory besides its source's name and its `event_id`: its hash-table slot
/// and its place in the expiry order (at their tables' average fill), its key's allocation
/// header and length prefix. An estimate, counted with the names against [`Limits::max_bytes`].
pub const ENTRY_OVERHEAD: usize = 160;

/// What the window remembers, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long an id is remembered after its first copy arrived (zero: not at all; repeats
    /// within one batch are still dropped).
    pub window: Duration,
    /// At most this many ids are remembered; past it, the oldest are forgotten first.
    pub max_ids: usize,
    /// At most this many bytes (per id its source's name, its `event_id` and [`ENTRY_OVERHEAD`]);
    /// past it, the oldest ids are forgotten first.
    pub max_bytes: usize,
}

/// The mark of one claim: every id a batch claims carries it.
type ClaimId = u64;

/// The key of an id: the source's length, the source, the id (unambiguous, one allocation), and
/// its hash, worked out once: the slot, the expiry order and the claim's settling all reuse it.
#[derive(Clone)]
pub struct Key {
    hash: u64,
    text: Arc<str>,
}

impl Key {
    /// Whether `self` is the very key `other` is (the same allocation: a clone of it), which
    /// tells a slot from a later one for the same id.
    fn is(&self, other: &Key) -> bool {
        Arc::ptr_eq(&self.text, &other.text)
    }
}

/// One remembered id: which claim holds it, and whether its copy is stored (else it is being
/// appended, and [`Window::pending`] says how to wait for it).
struct Slot {
    key: Key,
    claim: ClaimId,
    stored: bool,
}

impl Slot {
    /// Whether this is the slot `claim` made for `key` (not a later copy's for the same id).
    fn holds(&self, claim: ClaimId, key: &Key) -> bool {
        self.claim == claim && self.key.is(key)
    }
}

/// One id in the expiry order. Its slot may have gone (a failed append): then it only waits
/// to be dropped, and still counts, so that memory stays bounded.
struct Entry {
    claim: ClaimId,
    at: Instant,
    key: Key,
}

/// What claiming a batch's ids found.
pub enum Sorting {
    /// The new ids are claimed (pending) under `claim`: `keys` are theirs, and `fresh[i]` says
    /// whether the batch's `i`-th event is to be queued (`false`: a duplicate).
    Claimed {
        claim: ClaimId,
        keys: Vec<Key>,
        fresh: Vec<bool>,
    },
    /// Another copy of one of the ids is being stored: nothing was claimed; wait until the
    /// receiver turns `true`, then claim again.
    Busy(watch::Receiver<bool>),
}

/// The ids of the window.
pub struct Window {
    limits: Limits,
    /// SipHash under this process's own random keys: ids come from clients, who must not be able
    /// to choose ids that collide.
    hasher: RandomState,
    slots: HashTable<Slot>,
    /// The claims whose appends have not settled: each one's receiver turns `true` once it has.
    pending: HashMap<ClaimId, watch::Receiver<bool>>,
    order: VecDeque<Entry>,
    bytes: usize,
    next_claim: ClaimId,
}

/// The text of an id's key: the source's length, the source, the id.
fn key_text(source: &str, id: &str) -> String {
    format!("{}:{source}{id}", source.len())
}

/// The bytes an id counts: its source's name, its `event_id`, and [`ENTRY_OVERHEAD`].
fn weight(key: &str) -> usize {
    let prefix = key.find(':').map_or(0, |colon| colon + 1);
    key.len() - prefix + ENTRY_OVERHEAD
}

impl Window {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            hasher: RandomState::new(),
            slots: HashTable::new(),
            pending: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            next_claim: 0,
        }
    }

    /// Ids remembered (stored or pending), and the bytes counted for them.
    pub fn usage(&self) -> (usize, usize) {
        (self.slots.len(), self.bytes)
    }

    /// The keys of a batch's ids from `source`, each allocated once.
    fn keys(&self, source: &str, ids: &[String]) -> Vec<Key> {
        let mut text = key_text(source, "");
        let prefix = text.len();
        ids.iter()
            .map(|id| {
                text.truncate(prefix);
                text.push_str(id);
                let hash = self.hasher.hash_one(text.as_str());
                let text = Arc::from(text.as_str());
                Key { hash, text }
            })
            .collect()
    }

    fn find(&self, key: &Key) -> Option<&Slot> {
        self.slots.find(key.hash, |s| s.key.text == key.text)
    }

    /// Sorts a batch's ids at `now`: when none is pending elsewhere, claims the new ones (pending
    /// until [`Window::settle`], woken through `settled`) in one step, so that no other batch can
    /// claim them too; repeats within the batch and ids stored in the window are duplicates.
    pub fn claim(
        &mut self,
        source: &str,
        ids: &[String],
        settled: &watch::Receiver<bool>,
        now: Instant,
    ) -> Sorting {
        self.expire(now);
        let keys = self.keys(source, ids);
        for k in &keys {
            if let Some(slot) = self.find(k).filter(|s| !s.stored)
                && let Some(other) = self.pending.get(&slot.claim)
            {
                return Sorting::Busy(other.clone());
            }
        }
        let claim = self.next_claim;
        self.next_claim += 1;
        let mut fresh = Vec::with_capacity(keys.len());
        let mut claimed = Vec::with_capacity(keys.len());
        for k in keys {
            // Found: stored within the window, or claimed earlier in this batch.
            let found = self
                .slots
                .entry(k.hash, |s| s.key.text == k.text, |s| s.key.hash);
            fresh.push(matches!(found, Found::Vacant(_)));
            if let Found::Vacant(place) = found {
                let key = k.clone();
                place.insert(Slot {
                    key,
                    claim,
                    stored: false,
                });
                claimed.push(k);
            }
        }
        if self.limits.window.is_zero() {
            // Nothing is remembered: the slots only found the repeats within the batch.
            for k in &claimed {
                self.forget(claim, k);
            }
        } else {
            self.pending.insert(claim, settled.clone());
            for k in &claimed {
                self.bytes += weight(&k.text);
                let key = k.clone();
                self.order.push_back(Entry {
                    claim,
                    at: now,
                    key,
                });
            }
            self.evict();
        }
        Sorting::Claimed {
            claim,
            keys: claimed,
            fresh,
        }
    }

    /// Settles a claim: its ids are stored (remembered until the window passes), or their append
    /// failed (forgotten: the next copy may be queued).
    pub fn settle(&mut self, claim: ClaimId, keys: &[Key], stored: bool) {
        self.pending.remove(&claim);
        for k in keys {
            if !stored {
                self.forget(claim, k);
            } else if let Some(slot) = self.slots.find_mut(k.hash, |s| s.holds(claim, k)) {
                slot.stored = true;
            }
        }
        if !stored {
            // The claim's entries are usually still the newest: drop them at once.
            while self.order.back().is_some_and(|e| e.claim == claim) {
                if let Some(e) = self.order.pop_back() {
                    self.bytes -= weight(&e.key.text);
                }
            }
        }
    }

    /// Forgets the ids the window has passed, and shrinks its tables when they are mostly empty.
    pub fn sweep(&mut self, now: Instant) {
        self.expire(now);
        if self.slots.capacity() > 4 * self.slots.len() + 256 {
            self.slots.shrink_to(2 * self.slots.len(), |s| s.key.hash);
        }
        if self.order.capacity() > 4 * self.order.len() + 256 {
            self.order.shrink_to(2 * self.order.len());
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(front) = self.order.front() {
            if now.saturating_duration_since(front.at) < self.limits.window {
                break;
            }
            self.forget_oldest();
        }
    }

    /// Forgets the oldest ids while the caps are exceeded.
    fn evict(&mut self) {
        while self.order.len() > self.limits.max_ids || self.bytes > self.limits.max_bytes {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        let Some(e) = self.order.pop_front() else {
            return;
        };
        self.bytes -= weight(&e.key.text);
        self.forget(e.claim, &e.key);
    }

    /// Removes the slot of `key` when `claim` still holds it (not a later copy's).
    fn forget(&mut self, claim: ClaimId, key: &Key) {
        if let Ok(slot) = self.slots.find_entry(key.hash, |s| s.holds(claim, key)) {
            slot.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn limits(window: Duration) -> Limits {
        Limits {
            window,
            max_ids: 1000,
            max_bytes: 1 << 20,
        }
    }

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Claims and expects a claim; returns it with the fresh flags.
    fn claimed(
        w: &mut Window,
        source: &str,
        batch: &[&str],
        now: Instant,
    ) -> (ClaimId, Vec<Key>, Vec<bool>) {
        let (_tx, rx) = watch::channel(false);
        match w.claim(source, &ids(batch), &rx, now) {
            Sorting::Claimed { claim, keys, fresh } => (claim, keys, fresh),
            Sorting::Busy(_) => panic!("busy"),
        }
    }

    #[test]
    fn stored_ids_repeat_per_source_within_the_window_only() {
        let t = Instant::now();
        let mut w = Window::new(limits(MINUTE));
        let (claim, keys, fresh) = claimed(&mut w, "web", &["a", "b", "a"], t);
        assert_eq!(fresh, [true, true, false], "a repeat within the batch");
        assert_eq!(keys.len(), 2);
        w.settle(claim, &keys, true);
        let (_, _, fresh) = claimed(&mut w, "web", &["a", "c"], t + MINUTE / 2);
        assert_eq!(fresh, [false, true]);
        let (_, _, fresh) = claimed(&mut w, "server", &["a"], t + MINUTE / 2);
        assert_eq!(fresh, [true], "another source's id");
        let (_, _, fresh) = claimed(&mut w, "web", &["a"], t + MINUTE);
        assert_eq!(fresh, [true], "the window has passed");
    }

    #[test]
    fn a_pending_id_makes_another_batch_wait_and_claims_nothing_of_it() {
        let t = Instant::now();
        let mut w = Window::new(limits(MINUTE));
        let (claim, keys, _) = claimed(&mut w, "web", &["a", "b"], t);
        let (_tx, rx) = watch::channel(false);
        let busy = w.claim("web", &ids(&["c", "b"]), &rx, t);
        assert!(matches!(busy, Sorting::Busy(_)));
        assert_eq!(w.usage().0, 2, "`c` was not claimed");
        w.settle(claim, &keys, false);
        assert_eq!(w.usage(), (0, 0), "a failed append forgets its ids");
        let (_, _, fresh) = claimed(&mut w, "web", &["c", "b"], t);
        assert_eq!(
            fresh,
            [true, true],
            "after a failure the next copy takes over"
        );
    }

    #[test]
    fn the_caps_forget_the_oldest_ids_first() {
        let t = Instant::now();
        let weight_of_one = "web".len() + "id-0".len() + ENTRY_OVERHEAD;
        assert_eq!(weight(&key_text("web", "id-0")), weight_of_one);
        let mut w = Window::new(Limits {
            window: MINUTE,
            max_ids: 3,
            max_bytes: 1 << 20,
        });
        for i in 0..5 {
            let (claim, keys, _) = claimed(&mut w, "web", &[&format!("id-{i}")], t);
            w.settle(claim, &keys, true);
        }
        assert_eq!(w.usage(), (3, 3 * weight_of_one));
        let (_, _, fresh) = claimed(&mut w, "web", &["id-1", "id-2"], t);
        assert_eq!(fresh, [true, false], "id-1 was forgotten, id-2 kept");

        let mut w = Window::new(Limits {
            window: MINUTE,
            max_ids: 1000,
            max_bytes: 2 * weight_of_one,
        });
        for i in 0..4 {
            let (claim, keys, _) = claimed(&mut w, "web", &[&format!("id-{i}")], t);
            w.settle(claim, &keys, true);
        }
        assert_eq!(w.usage(), (2, 2 * weight_of_one));
    }

    #[test]
    fn a_zero_window_drops_only_repeats_within_a_batch() {
        let t = Instant::now();
        let mut w = Window::new(limits(Duration::ZERO));
        let (claim, keys, fresh) = claimed(&mut w, "web", &["a", "a"], t);
        assert_eq!(fresh, [true, false]);
        w.settle(claim, &keys, true);
        assert_eq!(w.usage(), (0, 0));
        let (_, _, fresh) = claimed(&mut w, "web", &["a"], t);
        assert_eq!(fresh, [true]);
    }

    #[test]
    fn expiry_and_sweeping_give_the_memory_back() {
        let t = Instant::now();
        let mut w = Window::new(limits(MINUTE));
        let batch: Vec<String> = (0..500).map(|i| format!("id-{i}")).collect();
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        let (claim, keys, _) = claimed(&mut w, "web", &refs, t);
        w.settle(claim, &keys, true);
        assert_eq!(w.usage().0, 500);
        w.sweep(t + MINUTE);
        assert_eq!(w.usage(), (0, 0));
        assert!(w.slots.capacity() < 500, "{}", w.slots.capacity());
        assert!(w.order.capacity() < 500, "{}", w.order.capacity());
    }
}
