//! A block: the records of one append, stored as one value of the embedded queue's table.
//!
//! One insert per append instead of one per record: redb's cost of an insert hardly depends on
//! the value's size, and a record is a few hundred bytes (BENCHMARKS.md, round ten). Per record,
//! a block holds its id (`u64`, little-endian), its length (`u32`, little-endian) and its bytes
//! (the [`crate::encode`]d record). Ids ascend within a block. A block is keyed by the first id
//! it was written with; acking some of its records rewrites it under the same key, so the blocks'
//! id ranges stay in key order and never overlap.

use crate::QueueError;

/// Bytes before each record: its id and its length.
const HEAD: usize = 8 + 4;

/// A stored block that does not frame: cut short, or a length past its end.
fn torn() -> QueueError {
    QueueError::Record(
        "block in the store does not decode",
        postcard::Error::DeserializeUnexpectedEnd,
    )
}

/// The block of `records`, numbered from `first`. A record of 4 GiB or more cannot be framed
/// (appends are bounded far below: ingestion's body limit and the queue budget).
pub(crate) fn write(first: u64, records: &[Vec<u8>]) -> Result<Vec<u8>, QueueError> {
    let size = records.iter().map(|r| HEAD + r.len()).sum();
    let mut block = Vec::with_capacity(size);
    for (id, record) in (first..).zip(records) {
        push(&mut block, id, record)?;
    }
    Ok(block)
}

/// Appends one record, framed, to `block`.
pub(crate) fn push(block: &mut Vec<u8>, id: u64, record: &[u8]) -> Result<(), QueueError> {
    let len = u32::try_from(record.len()).map_err(|_| {
        QueueError::Record("is too large to store", postcard::Error::SerdeSerCustom)
    })?;
    block.extend_from_slice(&id.to_le_bytes());
    block.extend_from_slice(&len.to_le_bytes());
    block.extend_from_slice(record);
    Ok(())
}

/// The records of a block with their ids, in id order; an error ends it where it does not frame.
pub(crate) fn entries(block: &[u8]) -> impl Iterator<Item = Result<(u64, &[u8]), QueueError>> {
    let mut rest = block;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        Some(match split_entry(rest) {
            Ok((id, record, after)) => {
                rest = after;
                Ok((id, record))
            }
            Err(e) => {
                rest = &[];
                Err(e)
            }
        })
    })
}

/// The first record of `bytes`: its id, its bytes and what follows it.
fn split_entry(bytes: &[u8]) -> Result<(u64, &[u8], &[u8]), QueueError> {
    let (head, rest) = bytes.split_at_checked(HEAD).ok_or_else(torn)?;
    let (id, len) = head.split_at(8);
    let id = u64::from_le_bytes(id.try_into().map_err(|_| torn())?);
    let len = u32::from_le_bytes(len.try_into().map_err(|_| torn())?) as usize;
    let (record, after) = rest.split_at_checked(len).ok_or_else(torn)?;
    Ok((id, record, after))
}

/// What removing records from a block leaves.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    /// Records removed, and their bytes.
    pub removed: u64,
    pub removed_bytes: u64,
    /// The block without them: `None` when none is left. Meaningless when none was removed.
    pub rest: Option<Vec<u8>>,
}

/// Removes the records whose ids are in `ids` (sorted, ascending) from `block`.
pub(crate) fn cut(block: &[u8], ids: &[u64]) -> Result<Cut, QueueError> {
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

/// The number of records of a block, their bytes, and the last id.
pub(crate) fn summary(block: &[u8]) -> Result<(u64, u64, Option<u64>), QueueError> {
    let (mut count, mut bytes, mut last) = (0, 0, None);
    for entry in entries(block) {
        let (id, record) = entry?;
        count += 1;
        bytes += record.len() as u64;
        last = Some(id);
    }
    Ok((count, bytes, last))
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
        assert_eq!(summary(&block).unwrap(), (3, 8, Some(9)));
        assert_eq!(summary(&[]).unwrap(), (0, 0, None));
    }

    #[test]
    fn cutting_removes_only_the_ids_given_and_says_when_nothing_is_left() {
        let records: Vec<Vec<u8>> = (0..5).map(|i| vec![b'x'; i + 1]).collect();
        let block = write(10, &records).unwrap();
        let cut_some = cut(&block, &[3, 11, 13, 99]).unwrap();
        assert_eq!((cut_some.removed, cut_some.removed_bytes), (2, 2 + 4));
        let rest = cut_some.rest.unwrap();
        assert_eq!(ids(&rest), [10, 12, 14]);
        assert_eq!(summary(&rest).unwrap(), (3, 1 + 3 + 5, Some(14)));
        let none = cut(&rest, &[1, 2]).unwrap();
        assert_eq!((none.removed, none.rest), (0, None));
        let all = cut(&rest, &[10, 12, 14]).unwrap();
        assert_eq!((all.removed, all.removed_bytes, all.rest), (3, 9, None));
    }

    #[test]
    fn a_torn_block_is_an_error_not_a_shorter_list() {
        let block = write(1, &[b"abcdef".to_vec(), b"gh".to_vec()]).unwrap();
        for end in [block.len() - 1, HEAD + 3, 5] {
            let read: Vec<_> = entries(&block[..end]).collect();
            assert!(
                matches!(read.last(), Some(Err(QueueError::Record(..)))),
                "cut at {end}: {read:?}"
            );
            assert!(summary(&block[..end]).is_err());
            assert!(cut(&block[..end], &[1]).is_err());
        }
    }
}
