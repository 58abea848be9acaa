//! A block: up to [`MAX_RECORDS`] records of one append, stored as one value of the embedded
//! queue's table.
//!
//! One insert per block instead of one per record: a redb insert costs thousands of instructions
//! besides copying the value, and a record is a few hundred bytes (`serve` spent 6.2 k instructions
//! per event in inserts when each record was its own value: BENCHMARKS.md, round ten). Per record, a
//! block holds its id (`u64`, little-endian), its length (`u32`, little-endian) and its bytes (the
//! [`crate::encode`]d record). Ids ascend within a block. A block is keyed by the first id it was
//! written with; acking some of its records rewrites it under the same key, so the blocks' id
//! ranges stay in key order and never overlap.

/// Most records in one block. An ack of some of a block's records writes the rest again, so the
/// cap bounds what one ack rewrites (a few hundred KiB at most for events of ~1 KiB).
pub(crate) const MAX_RECORDS: usize = 256;

/// Bytes before each record: its id and its length.
const HEAD: usize = 8 + 4;

/// Why a block cannot be written, or what is wrong with a stored one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    /// A stored block that does not frame: a record's header or bytes run past its end.
    #[error("the record at byte {offset} runs past the block's end ({len} bytes)")]
    Torn { offset: usize, len: usize },
    /// A stored block whose ids do not ascend from its key.
    #[error("its record ids do not ascend from its key: id {id} at byte {offset}")]
    OutOfOrder { id: u64, offset: usize },
    /// A stored block whose first id is not after the last id of the block before it.
    #[error("its first id is not after the previous block's last id, {previous_last}")]
    Overlaps { previous_last: u64 },
    /// Writing: a record of 4 GiB or more, whose length does not fit the frame.
    #[error("a record of {len} bytes is too large to store")]
    TooLarge { len: usize },
}

/// The block of `records`, numbered from `first`. A record of 4 GiB or more cannot be framed
/// (appends are bounded far below: ingestion's body limit and the queue budget).
pub(crate) fn write(first: u64, records: &[Vec<u8>]) -> Result<Vec<u8>, BlockError> {
    let size = records.iter().map(|r| HEAD + r.len()).sum();
    let mut block = Vec::with_capacity(size);
    for (id, record) in (first..).zip(records) {
        push(&mut block, id, record)?;
    }
    Ok(block)
}

/// Appends one record, framed, to `block`.
pub(crate) fn push(block: &mut Vec<u8>, id: u64, record: &[u8]) -> Result<(), BlockError> {
    let len =
        u32::try_from(record.len()).map_err(|_| BlockError::TooLarge { len: record.len() })?;
    block.extend_from_slice(&id.to_le_bytes());
    block.extend_from_slice(&len.to_le_bytes());
    block.extend_from_slice(record);
    Ok(())
}

/// The records of a block with their ids, in id order; an error ends it where it does not frame.
pub(crate) fn entries(block: &[u8]) -> impl Iterator<Item = Result<(u64, &[u8]), BlockError>> {
    let mut offset = 0;
    std::iter::from_fn(move || {
        let rest = block.get(offset..).filter(|rest| !rest.is_empty())?;
        Some(match split_entry(rest) {
            Some((id, record)) => {
                offset += HEAD + record.len();
                Ok((id, record))
            }
            None => {
                let len = block.len();
                let torn = BlockError::Torn { offset, len };
                offset = len;
                Err(torn)
            }
        })
    })
}

/// The first record of `bytes`: its id and its bytes (`None` when they run past the end).
fn split_entry(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_at_checked(HEAD)?;
    let (id, len) = head.split_at(8);
    let id = u64::from_le_bytes(id.try_into().ok()?);
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    Some((id, rest.get(..len)?))
}

/// What removing records from a block leaves.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    /// Records removed.
    pub removed: u64,
    /// The bytes of the records removed.
    pub removed_bytes: u64,
    /// The block without them: `None` when none is left. Meaningless when none was removed.
    pub rest: Option<Vec<u8>>,
}

/// Removes the records whose ids are in `ids` (sorted, ascending) from `block`.
pub(crate) fn cut(block: &[u8], ids: &[u64]) -> Result<Cut, BlockError> {
    let (mut removed, mut removed_bytes) = (0, 0);
    let mut kept: Vec<(u64, &[u8])> = Vec::new();
    for entry in entries(block) {
        let (id, record) = entry?;
        if ids.binary_search(&id).is_ok() {
            removed += 1;
            removed_bytes += record.len() as u64;
        } else {
            kept.push((id, record));
        }
    }
    let rest = match (removed, kept.is_empty()) {
        (0, _) | (_, true) => None,
        _ => {
            let mut rest = Vec::with_capacity(block.len());
            for (id, record) in kept {
                push(&mut rest, id, record)?;
            }
            Some(rest)
        }
    };
    Ok(Cut {
        removed,
        removed_bytes,
        rest,
    })
}

/// What a block holds, as opening the queue counts it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// How many records it holds.
    pub records: u64,
    /// The bytes of its records.
    pub bytes: u64,
    /// Its last id (`None` for an empty block).
    pub last: Option<u64>,
}

/// What the block stored under `key` holds, checking that its ids ascend from `key`.
pub(crate) fn summary(key: u64, block: &[u8]) -> Result<Summary, BlockError> {
    let mut summary = Summary::default();
    let mut offset = 0;
    for entry in entries(block) {
        let (id, record) = entry?;
        if id < summary.last.map_or(key, |last| last.saturating_add(1)) {
            return Err(BlockError::OutOfOrder { id, offset });
        }
        summary.records += 1;
        summary.bytes += record.len() as u64;
        summary.last = Some(id);
        offset += HEAD + record.len();
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(block: &[u8]) -> Vec<u64> {
        entries(block).map(|e| e.unwrap().0).collect()
    }

    #[test]
    fn a_block_gives_back_its_records_with_their_ids() {
        let records = vec![b"one".to_vec(), Vec::new(), b"three".to_vec()];
        let block = write(7, &records).unwrap();
        let read: Vec<(u64, &[u8])> = entries(&block).map(Result::unwrap).collect();
        assert_eq!(read, [(7, &b"one"[..]), (8, &b""[..]), (9, &b"three"[..])]);
        let three = Summary {
            records: 3,
            bytes: 8,
            last: Some(9),
        };
        assert_eq!(summary(7, &block), Ok(three));
        assert_eq!(summary(1, &[]), Ok(Summary::default()));
    }

    #[test]
    fn cutting_removes_only_the_ids_given_and_says_when_nothing_is_left() {
        let records: Vec<Vec<u8>> = (0..5).map(|i| vec![b'x'; i + 1]).collect();
        let block = write(10, &records).unwrap();
        let cut_some = cut(&block, &[3, 11, 13, 99]).unwrap();
        assert_eq!((cut_some.removed, cut_some.removed_bytes), (2, 2 + 4));
        let rest = cut_some.rest.unwrap();
        assert_eq!(ids(&rest), [10, 12, 14]);
        let left = summary(10, &rest).unwrap();
        assert_eq!(
            (left.records, left.bytes, left.last),
            (3, 1 + 3 + 5, Some(14))
        );
        let none = cut(&rest, &[1, 2]).unwrap();
        assert_eq!((none.removed, none.rest), (0, None));
        let all = cut(&rest, &[10, 12, 14]).unwrap();
        assert_eq!((all.removed, all.removed_bytes, all.rest), (3, 9, None));
    }

    #[test]
    fn a_torn_block_is_an_error_not_a_shorter_list() {
        let block = write(1, &[b"abcdef".to_vec(), b"gh".to_vec()]).unwrap();
        let second = HEAD + 6;
        for (len, offset) in [(block.len() - 1, second), (HEAD + 3, 0), (5, 0)] {
            let read: Vec<_> = entries(&block[..len]).collect();
            let torn = BlockError::Torn { offset, len };
            assert_eq!(read.last(), Some(&Err(torn)), "cut at {len}");
            assert!(summary(1, &block[..len]).is_err());
            assert!(cut(&block[..len], &[1]).is_err());
        }
    }

    #[test]
    fn ids_that_do_not_ascend_from_the_key_are_found_on_summary() {
        let block = write(5, &[b"a".to_vec(), b"b".to_vec()]).unwrap();
        assert_eq!(
            summary(6, &block),
            Err(BlockError::OutOfOrder { id: 5, offset: 0 })
        );
        let mut twice = block.clone();
        push(&mut twice, 6, b"c").unwrap();
        assert_eq!(
            summary(5, &twice),
            Err(BlockError::OutOfOrder {
                id: 6,
                offset: 2 * (HEAD + 1)
            })
        );
    }
}
