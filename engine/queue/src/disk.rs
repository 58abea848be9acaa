//! The embedded queue: one redb file, `queue.redb`, in the data directory.
//!
//! Tables: `event_blocks` (the records of an append, up to 256 in one value, a
//! [block](crate::block), keyed by its first id) and `dead_letters` (id → [`DeadLetter`]). Ids
//! grow with every append; on open they go on from the last id kept. A store written before blocks
//! (`events`: id → [`Record`]) is moved into blocks when opened, after the blocks there are (a
//! rollback to a version without blocks does not see them, and queues what it takes there).
//!
//! Every write goes through one writer thread, which takes everything waiting and commits it in
//! one transaction with `Durability::Immediate` (group commit): a write is acknowledged only once
//! it is on disk, and many concurrent requests share one `fsync`.
//! The disk budget counts the bytes of the records kept and of the dead letters (not the file's
//! size, which redb reuses but does not shrink): dead letters that pile up (a revoked token) fill
//! the budget like queued events, and ingestion is refused (503) instead of filling the disk.
//! Dead-lettering itself is never refused: it moves an event that is already counted.
//!
//! One process uses the file: claiming moves a cursor over the ids (in memory), and releasing
//! moves it back to the start, so every record not acked is claimed again.

use crate::block;
use crate::record::{decode, encode};
use crate::{BlockError, Commit, DeadLetter, EventQueue, QueueError, Reading, Record, StoreError};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    WriteTransaction,
};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::oneshot;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("event_blocks");
/// One value per record: the table of a store written before blocks.
const RECORDS_BEFORE_BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");

/// Operations waiting for the writer, each with where its answer goes.
enum Op {
    Append(Vec<Vec<u8>>, oneshot::Sender<Result<Vec<u64>, QueueError>>),
    Ack(Vec<u64>, oneshot::Sender<Result<(), QueueError>>),
    Dead(Vec<Vec<u8>>, oneshot::Sender<Result<(), QueueError>>),
    RemoveDead(Vec<u64>, oneshot::Sender<Result<(), QueueError>>),
}

/// Most operations the writer puts in one transaction.
const MAX_GROUP: usize = 4096;

/// The embedded, durable queue.
pub struct DiskQueue {
    db: Arc<Database>,
    /// `None` only while dropping.
    writer: Option<mpsc::Sender<Op>>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<Stats>,
    budget: u64,
    /// The id of the last record claimed (`None`: claim from the oldest).
    claimed: Arc<Mutex<Option<u64>>>,
}

#[derive(Default)]
struct Stats {
    /// Bytes of records and dead letters kept, plus bytes reserved by appends not yet committed.
    bytes: AtomicU64,
    /// Of `bytes`, those of dead letters.
    dead_bytes: AtomicU64,
    count: AtomicU64,
}

/// A store failure while doing `action`.
fn store<E: Into<redb::Error>>(action: &'static str) -> impl Fn(E) -> QueueError {
    move |e| QueueError::Store {
        action,
        source: Arc::new(e.into()),
    }
}

/// The bytes of every value of a table.
fn table_bytes(table: &impl ReadableTable<u64, &'static [u8]>) -> Result<u64, QueueError> {
    let mut bytes = 0u64;
    for entry in table.iter().map_err(store("opening"))? {
        let (_, v) = entry.map_err(store("opening"))?;
        bytes += v.value().len() as u64;
    }
    Ok(bytes)
}

impl DiskQueue {
    /// Opens (or creates) the queue in `dir`, with a disk budget of `budget` bytes of records and
    /// dead letters.
    pub fn open(dir: &Path, budget: u64) -> Result<Self, QueueError> {
        std::fs::create_dir_all(dir).map_err(|e| QueueError::Store {
            action: "creating its folder",
            source: Arc::new(e),
        })?;
        let db = Database::create(dir.join("queue.redb")).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => QueueError::InUse,
            other => store("opening")(other),
        })?;
        let stats = Arc::new(Stats::default());
        let next = {
            let txn = db.begin_write().map_err(store("opening"))?;
            move_into_blocks(&txn)?;
            let next = count_kept(&txn, &stats)?;
            txn.commit().map_err(store("opening"))?;
            next
        };
        let db = Arc::new(db);
        let (writer, ops) = mpsc::channel();
        let thread_db = db.clone();
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("switchyard-queue-writer".into())
            .spawn(move || write_loop(&thread_db, &thread_stats, ops, next))
            .map_err(|e| QueueError::Store {
                action: "starting its writer thread",
                source: Arc::new(e),
            })?;
        Ok(Self {
            db,
            writer: Some(writer),
            thread: Some(thread),
            stats,
            budget,
            claimed: Arc::new(Mutex::new(None)),
        })
    }

    /// Up to `max` records with ids above `after` (from the start when `None`), in id order.
    pub fn read(&self, after: Option<u64>, max: usize) -> Result<Vec<(u64, Record)>, QueueError> {
        read_records(&self.db, after, max)
    }

    /// Reserves `size` bytes of the budget, or says it is full (or that `size` exceeds the whole
    /// budget, which no wait can fix).
    fn reserve(&self, size: u64) -> Result<(), QueueError> {
        if size > self.budget {
            return Err(QueueError::TooLarge {
                size,
                budget: self.budget,
            });
        }
        let mut used = self.stats.bytes.load(Ordering::Relaxed);
        loop {
            if used + size > self.budget {
                return Err(QueueError::Full {
                    used,
                    dead_letters: self.stats.dead_bytes.load(Ordering::Relaxed),
                    budget: self.budget,
                });
            }
            match self.stats.bytes.compare_exchange_weak(
                used,
                used + size,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    fn submit<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, QueueError>>) -> Op,
    ) -> Commit<T> {
        let (tx, rx) = oneshot::channel();
        let sent = self.writer.as_ref().map(|w| w.send(make(tx)));
        Box::pin(async move {
            match sent {
                Some(Ok(())) => {}
                _ => return Err(QueueError::Closed),
            }
            rx.await.unwrap_or(Err(QueueError::Closed))
        })
    }
}

/// Every dead letter with its id, oldest first.
fn read_dead_letters(db: &Database) -> Result<Vec<(u64, DeadLetter)>, QueueError> {
    let txn = db.begin_read().map_err(store("reading"))?;
    let table = txn.open_table(DEAD).map_err(store("reading"))?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(store("reading"))? {
        let (k, v) = entry.map_err(store("reading"))?;
        out.push((k.value(), decode(v.value())?));
    }
    Ok(out)
}

/// Moves the records of a store written before blocks (one value per record) into blocks, in id
/// order, and drops their table: a queue written by an earlier version is read as it was. They
/// keep their ids, unless blocks are there already (a version with blocks ran, then one without):
/// then they are numbered on from the blocks' last id, so that none overwrites a block.
fn move_into_blocks(txn: &WriteTransaction) -> Result<(), QueueError> {
    let action = "moving records into blocks";
    let mut tables = txn.list_tables().map_err(store(action))?;
    if !tables.any(|t| t.name() == RECORDS_BEFORE_BLOCKS.name()) {
        return Ok(());
    }
    {
        let mut blocks = txn.open_table(BLOCKS).map_err(store(action))?;
        let mut renumbered = id_after_blocks(&blocks, action)?;
        let old = txn
            .open_table(RECORDS_BEFORE_BLOCKS)
            .map_err(store(action))?;
        let (mut block, mut first, mut n) = (Vec::new(), None, 0);
        for entry in old.iter().map_err(store(action))? {
            let (id, record) = entry.map_err(store(action))?;
            let id = match renumbered.as_mut() {
                Some(next) => std::mem::replace(next, next.saturating_add(1)),
                None => id.value(),
            };
            let key = *first.get_or_insert(id);
            block::push(&mut block, id, record.value()).map_err(written(key))?;
            n += 1;
            if n == block::MAX_RECORDS {
                blocks
                    .insert(key, block.as_slice())
                    .map_err(store(action))?;
                (block, first, n) = (Vec::new(), None, 0);
            }
        }
        if let Some(key) = first {
            blocks
                .insert(key, block.as_slice())
                .map_err(store(action))?;
        }
    }
    txn.delete_table(RECORDS_BEFORE_BLOCKS)
        .map_err(store(action))?;
    Ok(())
}

/// The id after the last block's last one, when there are blocks.
fn id_after_blocks(
    blocks: &impl ReadableTable<u64, &'static [u8]>,
    action: &'static str,
) -> Result<Option<u64>, QueueError> {
    let Some((key, block)) = blocks.last().map_err(store(action))? else {
        return Ok(None);
    };
    let key = key.value();
    let summary = block::summary(key, block.value()).map_err(damaged(key))?;
    Ok(Some(summary.last.unwrap_or(key).saturating_add(1)))
}

/// Counts the records and dead letters kept into `stats`; gives the next id of each.
fn count_kept(txn: &WriteTransaction, stats: &Stats) -> Result<[u64; 2], QueueError> {
    let blocks = txn.open_table(BLOCKS).map_err(store("opening"))?;
    let dead = txn.open_table(DEAD).map_err(store("opening"))?;
    let (mut count, mut bytes, mut last) = (0, 0, None::<u64>);
    for entry in blocks.iter().map_err(store("opening"))? {
        let (key, v) = entry.map_err(store("opening"))?;
        let key = key.value();
        let failed = damaged(key);
        if let Some(previous_last) = last.filter(|&last| key <= last) {
            // A block's ids come after the previous block's: their ranges never overlap.
            return Err(failed(BlockError::Overlaps { previous_last }));
        }
        let s = block::summary(key, v.value()).map_err(failed)?;
        (count, bytes, last) = (count + s.records, bytes + s.bytes, s.last.or(last));
    }
    let dead_bytes = table_bytes(&dead)?;
    stats.bytes.store(bytes + dead_bytes, Ordering::Relaxed);
    stats.dead_bytes.store(dead_bytes, Ordering::Relaxed);
    stats.count.store(count, Ordering::Relaxed);
    let last_dead = dead
        .last()
        .map_err(store("opening"))?
        .map(|(k, _)| k.value());
    Ok([last, last_dead].map(|l| l.map_or(1, |l| l.saturating_add(1))))
}

/// Up to `max` records with ids above `after` (from the oldest when `None`), in id order.
fn read_records(
    db: &Database,
    after: Option<u64>,
    max: usize,
) -> Result<Vec<(u64, Record)>, QueueError> {
    let txn = db.begin_read().map_err(store("reading"))?;
    let blocks = txn.open_table(BLOCKS).map_err(store("reading"))?;
    let from = after.map_or(0, |a| a.saturating_add(1));
    let start = block_key_for(&blocks, from).map_err(store("reading"))?;
    let mut out = Vec::new();
    for entry in blocks.range(start..).map_err(store("reading"))? {
        let (key, v) = entry.map_err(store("reading"))?;
        let key = key.value();
        for record in block::entries(v.value()) {
            let (id, bytes) = record.map_err(damaged(key))?;
            if id < from {
                continue;
            }
            if out.len() == max {
                return Ok(out);
            }
            out.push((id, decode(bytes)?));
        }
    }
    Ok(out)
}

/// The key of the block that may hold `id`: the last key not above it (`id` when there is none).
fn block_key_for(
    blocks: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<u64, redb::StorageError> {
    Ok(match blocks.range(..=id)?.next_back() {
        Some(entry) => entry?.0.value(),
        None => id,
    })
}

/// Closing finishes what the writer has taken, then releases the database file.
impl Drop for DiskQueue {
    fn drop(&mut self) {
        self.writer.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl EventQueue for DiskQueue {
    fn append(&self, records: Vec<Record>) -> Commit<Vec<u64>> {
        let encoded: Vec<Vec<u8>> = match records.iter().map(encode).collect() {
            Ok(encoded) => encoded,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        if let Some(size) = encoded
            .iter()
            .map(Vec::len)
            .find(|&n| u32::try_from(n).is_err())
        {
            return Box::pin(async move { Err(QueueError::RecordTooLarge { size }) });
        }
        let size: u64 = encoded.iter().map(|e| e.len() as u64).sum();
        if let Err(e) = self.reserve(size) {
            return Box::pin(async move { Err(e) });
        }
        self.submit(|tx| Op::Append(encoded, tx))
    }

    fn claim(&self, max: usize, linger: Duration) -> Reading<Vec<(u64, Record)>> {
        let (db, claimed) = (self.db.clone(), self.claimed.clone());
        Box::pin(async move {
            let after = *claimed.lock().unwrap_or_else(|p| p.into_inner());
            let mut records = read_records(&db, after, max)?;
            if !records.is_empty() && records.len() < max && !linger.is_zero() {
                tokio::time::sleep(linger).await;
                records = read_records(&db, after, max)?;
            }
            if let Some((last, _)) = records.last() {
                *claimed.lock().unwrap_or_else(|p| p.into_inner()) = Some(*last);
            }
            Ok(records)
        })
    }

    fn release(&self, _ids: Vec<u64>) {
        *self.claimed.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn ack(&self, ids: Vec<u64>) -> Commit<()> {
        self.submit(|tx| Op::Ack(ids, tx))
    }

    fn depth(&self) -> (u64, u64) {
        (
            self.stats.count.load(Ordering::Relaxed),
            self.stats.bytes.load(Ordering::Relaxed),
        )
    }

    fn dead_letter(&self, letters: Vec<DeadLetter>) -> Commit<()> {
        match letters.iter().map(encode).collect() {
            Ok(encoded) => self.submit(|tx| Op::Dead(encoded, tx)),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn dead_letters(&self) -> Reading<Vec<(u64, DeadLetter)>> {
        let letters = read_dead_letters(&self.db);
        Box::pin(async move { letters })
    }

    fn remove_dead_letters(&self, ids: Vec<u64>) -> Commit<()> {
        self.submit(|tx| Op::RemoveDead(ids, tx))
    }
}

/// What a committed group changed: events added and removed (with their bytes), and the bytes of
/// dead letters added and removed.
#[derive(Default, Clone, Copy)]
struct Delta {
    added: u64,
    removed: u64,
    removed_bytes: u64,
    dead_added_bytes: u64,
    dead_removed_bytes: u64,
}

/// The writer: takes every waiting operation, applies them in one transaction, commits durably,
/// then answers each. `next` holds the next id of the events and of the dead letters.
fn write_loop(db: &Database, stats: &Stats, ops: mpsc::Receiver<Op>, mut next: [u64; 2]) {
    while let Ok(first) = ops.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match ops.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        let before = next;
        let result = apply(db, &group, &mut next);
        match &result {
            Ok(delta) => stats.count_in(delta),
            Err(_) => {
                next = before;
                stats.release(reserved_bytes(&group));
            }
        }
        answer(group, result.map(|_| ()), before);
    }
}

impl Stats {
    /// Counts a committed group.
    fn count_in(&self, d: &Delta) {
        self.bytes.fetch_add(d.dead_added_bytes, Ordering::AcqRel);
        self.bytes
            .fetch_sub(d.removed_bytes + d.dead_removed_bytes, Ordering::AcqRel);
        self.dead_bytes
            .fetch_add(d.dead_added_bytes, Ordering::AcqRel);
        self.dead_bytes
            .fetch_sub(d.dead_removed_bytes, Ordering::AcqRel);
        self.count.fetch_add(d.added, Ordering::AcqRel);
        self.count.fetch_sub(d.removed, Ordering::AcqRel);
    }

    /// Gives back bytes reserved by appends that failed.
    fn release(&self, bytes: u64) {
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// The bytes a group's appends reserved.
fn reserved_bytes(group: &[Op]) -> u64 {
    group
        .iter()
        .filter_map(|op| match op {
            Op::Append(records, _) => Some(records.iter().map(|r| r.len() as u64).sum::<u64>()),
            _ => None,
        })
        .sum()
}

/// A failure of the store, as every operation of the group is told.
fn stored<E: Into<redb::Error>>(e: E) -> StoreError {
    Arc::new(e.into())
}

/// What is wrong with the stored block under `key`.
fn damaged(key: u64) -> impl Fn(BlockError) -> QueueError {
    move |source| QueueError::Damaged { key, source }
}

/// A queue error, as every operation of the group is told.
fn shared(e: QueueError) -> StoreError {
    Arc::new(e)
}

/// Why a block starting at `key` could not be written: a record too large for it.
fn written(key: u64) -> impl Fn(BlockError) -> QueueError {
    move |e| match e {
        BlockError::TooLarge { len } => QueueError::RecordTooLarge { size: len },
        source => QueueError::Damaged { key, source },
    }
}

/// Applies a group in one transaction and says what it changed.
fn apply(db: &Database, group: &[Op], next: &mut [u64; 2]) -> Result<Delta, StoreError> {
    let mut txn = db.begin_write().map_err(stored)?;
    txn.set_durability(Durability::Immediate).map_err(stored)?;
    let mut d = Delta::default();
    {
        let mut blocks = txn.open_table(BLOCKS).map_err(stored)?;
        let mut dead = txn.open_table(DEAD).map_err(stored)?;
        for op in group {
            match op {
                Op::Append(records, _) => {
                    for part in records.chunks(block::MAX_RECORDS) {
                        let block = block::write(next[0], part)
                            .map_err(written(next[0]))
                            .map_err(shared)?;
                        blocks.insert(next[0], block.as_slice()).map_err(stored)?;
                        next[0] += part.len() as u64;
                        d.added += part.len() as u64;
                    }
                }
                Op::Ack(ids, _) => remove_records(&mut blocks, ids, &mut d)?,
                Op::Dead(letters, _) => {
                    for l in letters {
                        dead.insert(next[1], l.as_slice()).map_err(stored)?;
                        next[1] += 1;
                        d.dead_added_bytes += l.len() as u64;
                    }
                }
                Op::RemoveDead(ids, _) => {
                    for id in ids {
                        if let Some(v) = dead.remove(id).map_err(stored)? {
                            d.dead_removed_bytes += v.value().len() as u64;
                        }
                    }
                }
            }
        }
    }
    txn.commit().map_err(stored)?;
    Ok(d)
}

/// Removes the records `ids` (acked) from the blocks that hold them: a block is written again
/// without them, or removed when none of its records is left. A round's ids are mostly one run of
/// consecutive ids, held by a few blocks; each block is read once, whatever the runs.
fn remove_records(
    blocks: &mut redb::Table<'_, u64, &'static [u8]>,
    ids: &[u64],
    d: &mut Delta,
) -> Result<(), StoreError> {
    let runs = runs(ids);
    let sorted: Vec<u64> = runs.iter().cloned().flatten().collect();
    let mut keys = std::collections::BTreeSet::new();
    for run in runs {
        let start = block_key_for(blocks, *run.start()).map_err(stored)?;
        for entry in blocks.range(start..=*run.end()).map_err(stored)? {
            keys.insert(entry.map_err(stored)?.0.value());
        }
    }
    for key in keys {
        let cut = match blocks.get(key).map_err(stored)? {
            Some(v) => block::cut(v.value(), &sorted)
                .map_err(damaged(key))
                .map_err(shared)?,
            None => continue,
        };
        if cut.removed == 0 {
            continue;
        }
        d.removed += cut.removed;
        d.removed_bytes += cut.removed_bytes;
        match cut.rest {
            Some(rest) => blocks.insert(key, rest.as_slice()).map(drop),
            None => blocks.remove(key).map(drop),
        }
        .map_err(stored)?;
    }
    Ok(())
}

/// The ids as runs of consecutive ids (`first..=last`), in ascending order; duplicates count once.
fn runs(ids: &[u64]) -> Vec<std::ops::RangeInclusive<u64>> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<std::ops::RangeInclusive<u64>> = Vec::new();
    for id in sorted {
        match runs.last_mut() {
            Some(run) if run.end().checked_add(1) == Some(id) => *run = *run.start()..=id,
            _ => runs.push(id..=id),
        }
    }
    runs
}

/// Answers every operation of a group: appends get their ids (handed out in group order from
/// `first`), everything else its result.
fn answer(group: Vec<Op>, result: Result<(), StoreError>, first: [u64; 2]) {
    let mut next_event = first[0];
    for op in group {
        let err = |e: &StoreError| QueueError::Store {
            action: "committing",
            source: e.clone(),
        };
        match op {
            Op::Append(records, tx) => {
                let ids = (next_event..next_event + records.len() as u64).collect();
                next_event += records.len() as u64;
                let _ = tx.send(result.as_ref().map(|_| ids).map_err(err));
            }
            Op::Ack(_, tx) | Op::Dead(_, tx) | Op::RemoveDead(_, tx) => {
                let _ = tx.send(result.as_ref().map(|_| ()).map_err(err));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_ids_are_removed_by_runs() {
        assert_eq!(runs(&[]), Vec::<std::ops::RangeInclusive<u64>>::new());
        assert_eq!(runs(&[7, 3, 4, 5, 9, 4, 8]), [3..=5, 7..=9]);
        assert_eq!(runs(&[u64::MAX, 0, 1]), [0..=1, u64::MAX..=u64::MAX]);
    }

    fn record(i: usize) -> Record {
        Record {
            source: "web".into(),
            received_at: 1,
            queued_at_ms: 1000,
            event: format!("{{\"event_id\": \"e{i}\"}}"),
            only: None,
        }
    }

    fn block_on<T>(f: Commit<T>) -> Result<T, QueueError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn records_survive_a_reopen_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
            let ids = block_on(q.append((0..5).map(record).collect())).unwrap();
            assert_eq!(ids, [1, 2, 3, 4, 5]);
            block_on(q.ack(vec![1, 2])).unwrap();
            assert_eq!(q.depth().0, 3);
        }
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        let kept: Vec<u64> = q
            .read(None, 10)
            .unwrap()
            .iter()
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(kept, [3, 4, 5]);
        assert_eq!(q.read(Some(3), 1).unwrap()[0].1, record(3));
        // Ids go on from the last one kept.
        assert_eq!(block_on(q.append(vec![record(9)])).unwrap(), [6]);
        assert_eq!(q.depth().0, 4);
    }

    fn ids_of(records: &[(u64, Record)]) -> Vec<u64> {
        records.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn acks_and_reads_cross_the_blocks_of_several_appends() {
        let dir = tempfile::tempdir().unwrap();
        let size = encode(&record(0)).unwrap().len() as u64;
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        for (from, to) in [(0, 3), (3, 5), (5, 9)] {
            block_on(q.append((from..to).map(record).collect())).unwrap();
        }
        // Ids 1-3, 4-5 and 6-9 are three blocks; this ack takes the end of the first, the
        // whole second and the start of the third.
        block_on(q.ack(vec![6, 2, 3, 4, 5, 2])).unwrap();
        assert_eq!(q.depth(), (4, 4 * size));
        assert_eq!(ids_of(&q.read(None, 10).unwrap()), [1, 7, 8, 9]);
        assert_eq!(ids_of(&q.read(Some(1), 2).unwrap()), [7, 8]);
        assert_eq!(ids_of(&q.read(Some(7), 10).unwrap()), [8, 9]);
        assert_eq!(q.read(Some(8), 1).unwrap()[0].1, record(8));
        assert!(q.read(Some(9), 10).unwrap().is_empty());
        assert!(q.read(None, 0).unwrap().is_empty());
        drop(q);
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.depth(), (4, 4 * size), "counted again on open");
        block_on(q.ack(vec![1, 7, 8, 9, 100])).unwrap();
        assert_eq!(q.depth(), (0, 0));
        assert_eq!(block_on(q.append(vec![record(9)])).unwrap(), [10]);
    }

    #[test]
    fn a_store_written_before_blocks_is_read_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let kept = [(3u64, record(3)), (4, record(4)), (7, record(7))];
        let letter = DeadLetter {
            destination: "tiktok".into(),
            reason: "bad token".into(),
            at: 5,
            record: record(1),
        };
        write_before_blocks(dir.path(), &kept, Some((2, &letter)));
        let size = encode(&record(3)).unwrap().len() as u64;
        let letter_size = encode(&letter).unwrap().len() as u64;
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.depth(), (3, 3 * size + letter_size));
        assert_eq!(q.read(None, 10).unwrap(), kept);
        assert_eq!(block_on(q.append(vec![record(8)])).unwrap(), [8]);
        assert_eq!(block_on(q.dead_letters()).unwrap(), [(2, letter)]);
        block_on(q.ack(vec![4])).unwrap();
        drop(q);
        let tables = with_store(dir.path(), |txn| {
            let names = txn.list_tables().unwrap();
            names.map(|t| t.name().to_owned()).collect::<Vec<_>>()
        });
        assert_eq!(tables, ["dead_letters", "event_blocks"]);
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(ids_of(&q.read(None, 10).unwrap()), [3, 7, 8]);
    }

    /// Writes records (and a dead letter) as a version before blocks did: one value per record.
    fn write_before_blocks(dir: &Path, kept: &[(u64, Record)], dead: Option<(u64, &DeadLetter)>) {
        let db = Database::create(dir.join("queue.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut old = txn.open_table(RECORDS_BEFORE_BLOCKS).unwrap();
            for (id, r) in kept {
                old.insert(*id, encode(r).unwrap().as_slice()).unwrap();
            }
            if let Some((id, letter)) = dead {
                let mut table = txn.open_table(DEAD).unwrap();
                table
                    .insert(id, encode(letter).unwrap().as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
    }

    /// Reads the store in `dir` directly, while no queue has it open.
    fn with_store<T>(dir: &Path, read: impl FnOnce(&WriteTransaction) -> T) -> T {
        let db = Database::create(dir.join("queue.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let out = read(&txn);
        txn.abort().unwrap();
        out
    }

    #[test]
    fn records_a_version_before_blocks_queued_after_a_rollback_go_after_the_blocks() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
            block_on(q.append((0..3).map(record).collect())).unwrap();
        }
        // The older version does not see the blocks: its ids start again at 1.
        write_before_blocks(dir.path(), &[(1, record(10)), (2, record(11))], None);
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.depth().0, 5);
        let all = q.read(None, 10).unwrap();
        assert_eq!(ids_of(&all), [1, 2, 3, 4, 5]);
        let records: Vec<Record> = all.into_iter().map(|(_, r)| r).collect();
        let expected: Vec<Record> = [0, 1, 2, 10, 11].into_iter().map(record).collect();
        assert_eq!(records, expected);
    }

    #[test]
    fn a_large_append_is_stored_in_blocks_of_at_most_max_records() {
        let dir = tempfile::tempdir().unwrap();
        let n = 2 * block::MAX_RECORDS + 3;
        {
            let q = DiskQueue::open(dir.path(), 1 << 30).unwrap();
            block_on(q.append((0..n).map(record).collect())).unwrap();
            let all = q.read(None, n + 1).unwrap();
            assert_eq!(ids_of(&all), (1..=n as u64).collect::<Vec<_>>());
        }
        let sizes = with_store(dir.path(), |txn| {
            let blocks = txn.open_table(BLOCKS).unwrap();
            let sizes = blocks.iter().unwrap().map(|entry| {
                let (key, v) = entry.unwrap();
                let summary = block::summary(key.value(), v.value()).unwrap();
                (key.value(), summary.records)
            });
            sizes.collect::<Vec<_>>()
        });
        let max = block::MAX_RECORDS as u64;
        assert_eq!(sizes, [(1, max), (1 + max, max), (1 + 2 * max, 3)]);
    }

    #[test]
    fn a_torn_block_is_refused_on_open_saying_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        drop(DiskQueue::open(dir.path(), 1 << 20).unwrap());
        let db = Database::create(dir.path().join("queue.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let block = block::write(1, &[encode(&record(1)).unwrap()]).unwrap();
        let torn = block.len() - 1;
        {
            let mut blocks = txn.open_table(BLOCKS).unwrap();
            blocks.insert(1, &block[..torn]).unwrap();
        }
        txn.commit().unwrap();
        drop(db);
        let refused = DiskQueue::open(dir.path(), 1 << 20).err().unwrap();
        let cause = std::error::Error::source(&refused).map(ToString::to_string);
        assert!(
            refused.to_string().contains("keep a copy of queue.redb"),
            "{refused}"
        );
        assert_eq!(
            cause.as_deref(),
            Some(format!("the record at byte 0 runs past the block's end ({torn} bytes)").as_str())
        );
    }

    #[test]
    fn blocks_whose_ids_overlap_are_refused_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
            block_on(q.append((0..3).map(record).collect())).unwrap();
        }
        let db = Database::create(dir.path().join("queue.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            // A block keyed 2 after the block 1..=3.
            let mut blocks = txn.open_table(BLOCKS).unwrap();
            let block = block::write(2, &[encode(&record(9)).unwrap()]).unwrap();
            blocks.insert(2, block.as_slice()).unwrap();
        }
        txn.commit().unwrap();
        drop(db);
        let refused = DiskQueue::open(dir.path(), 1 << 20).err();
        assert!(
            matches!(
                refused,
                Some(QueueError::Damaged {
                    key: 2,
                    source: BlockError::Overlaps { previous_last: 3 }
                })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn a_full_budget_refuses_the_whole_append_and_frees_on_ack() {
        let dir = tempfile::tempdir().unwrap();
        let size = encode(&record(0)).unwrap().len() as u64;
        let q = DiskQueue::open(dir.path(), size * 3).unwrap();
        block_on(q.append(vec![record(0), record(1)])).unwrap();
        let refused = block_on(q.append(vec![record(2), record(3)]));
        assert!(
            matches!(refused, Err(QueueError::Full { .. })),
            "{refused:?}"
        );
        assert_eq!(q.depth().0, 2, "nothing of a refused append is kept");
        block_on(q.ack(vec![1])).unwrap();
        block_on(q.append(vec![record(2), record(3)])).unwrap();
        assert_eq!(q.depth(), (3, size * 3));
    }

    #[test]
    fn dead_letters_are_kept_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        let letter = DeadLetter {
            destination: "tiktok".into(),
            reason: "bad token".into(),
            at: 5,
            record: record(1),
        };
        block_on(q.dead_letter(vec![letter.clone(), letter.clone()])).unwrap();
        let listed = block_on(q.dead_letters()).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].1, letter);
        block_on(q.remove_dead_letters(vec![listed[0].0])).unwrap();
        drop(q);
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(block_on(q.dead_letters()).unwrap().len(), 1);
    }

    #[test]
    fn dead_letters_count_in_the_budget_until_removed_also_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let size = encode(&record(0)).unwrap().len() as u64;
        let letter = |i| DeadLetter {
            destination: "d".into(),
            reason: "bad token".into(),
            at: 5,
            record: record(i),
        };
        let letter_size = encode(&letter(0)).unwrap().len() as u64;
        let budget = letter_size * 2 + size;
        let q = DiskQueue::open(dir.path(), budget).unwrap();
        block_on(q.dead_letter(vec![letter(0), letter(1)])).unwrap();
        assert_eq!(q.depth(), (0, letter_size * 2));
        block_on(q.append(vec![record(0)])).unwrap();
        let refused = block_on(q.append(vec![record(1)]));
        assert!(
            matches!(refused, Err(QueueError::Full { dead_letters, .. }) if dead_letters == letter_size * 2),
            "{refused:?}"
        );
        drop(q);
        let q = DiskQueue::open(dir.path(), budget).unwrap();
        assert_eq!(
            q.depth(),
            (1, letter_size * 2 + size),
            "counted again on open"
        );
        let ids = block_on(q.dead_letters())
            .unwrap()
            .into_iter()
            .map(|(id, _)| id);
        block_on(q.remove_dead_letters(ids.collect())).unwrap();
        block_on(q.append(vec![record(1)])).unwrap();
    }

    #[test]
    fn an_append_larger_than_the_whole_budget_is_too_large_not_full() {
        let dir = tempfile::tempdir().unwrap();
        let size = encode(&record(0)).unwrap().len() as u64;
        let q = DiskQueue::open(dir.path(), size).unwrap();
        let refused = block_on(q.append(vec![record(0), record(1)]));
        assert!(
            matches!(refused, Err(QueueError::TooLarge { .. })),
            "{refused:?}"
        );
        assert_eq!(q.depth(), (0, 0));
    }
}

#[cfg(test)]
mod claiming {
    use super::*;

    fn record(n: i64) -> Record {
        Record {
            source: "web".into(),
            received_at: n,
            queued_at_ms: n * 1000,
            event: format!("{{\"event_id\": \"e{n}\"}}"),
            only: None,
        }
    }

    #[tokio::test]
    async fn claimed_records_are_not_claimed_again_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        q.append((0..5).map(record).collect()).await.unwrap();
        let first = q.claim(3, Duration::ZERO).await.unwrap();
        let ids: Vec<u64> = first.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [1, 2, 3]);
        let rest = q.claim(3, Duration::ZERO).await.unwrap();
        assert_eq!(rest.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [4, 5]);
        assert!(q.claim(3, Duration::ZERO).await.unwrap().is_empty());
        q.ack(vec![1, 2]).await.unwrap();
        q.release(vec![3]);
        let again = q.claim(10, Duration::ZERO).await.unwrap();
        assert_eq!(
            again.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }

    #[tokio::test]
    async fn a_short_claim_lingers_once_for_more() {
        let dir = tempfile::tempdir().unwrap();
        let q = Arc::new(DiskQueue::open(dir.path(), 1 << 20).unwrap());
        q.append(vec![record(1)]).await.unwrap();
        let claiming = tokio::spawn(q.claim(2, Duration::from_millis(400)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        q.append(vec![record(2), record(3)]).await.unwrap();
        let claimed = claiming.await.unwrap().unwrap();
        assert_eq!(claimed.len(), 2, "lingered, then filled to max");
        let rest = q.claim(2, Duration::ZERO).await.unwrap();
        assert_eq!(rest.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [3]);
    }
}
