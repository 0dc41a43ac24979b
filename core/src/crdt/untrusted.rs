//! Decoding automerge bytes that came from outside (a pushed change, a pulled snapshot, an
//! export file) without letting a damaged or hostile input take the process down.
//!
//! automerge 0.12 panics on some malformed documents and changes instead of returning an
//! error: fuzzing found `AutoCommit::load` stopping in its column decoder (`hexane`:
//! "RawColumnIter::take would cross slab boundary") on a saved document with one byte
//! changed. Until automerge returns errors there, every decoder of outside input goes
//! through these functions, which turn such a panic into [`Untrusted::Panicked`].
//!
//! A panic can be caught; running out of memory cannot. automerge stores a document's and a
//! change's columns run-length encoded and expands a column whole when it loads it, so a
//! 2 KB document whose run says "4 billion times" asks for 16 GB (found by fuzzing as well)
//! and the process dies. Before automerge sees them, [`load`] and [`change`] therefore count
//! what every column expands to (deflated columns inflated within a limit) and refuse
//! bytes that would expand past [`max_column_entries`] ([`Untrusted::TooLarge`]).
//!
//! ```
//! # use wangge_core::crdt::untrusted;
//! let error = untrusted::load(b"\x85\x6f\x4a\x83 not a document").unwrap_err();
//! assert!(error.to_string().starts_with("not an automerge document"));
//! ```

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::{AutoCommit, Change};

/// Why outside bytes were not taken.
#[derive(Debug, thiserror::Error)]
pub enum Untrusted {
    #[error("not an automerge document or change: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error("not an automerge change: {0}")]
    Change(#[from] automerge::LoadChangeError),
    /// automerge itself failed on the input (a bug of its decoder, reached by damaged or
    /// hostile bytes).
    #[error("not an automerge document or change: the decoder failed on it")]
    Panicked,
    /// A column would expand to more entries than bytes of this size can honestly hold.
    #[error("not taken: a column of this automerge data expands to more than {limit} entries")]
    TooLarge { limit: u64 },
}

/// The most entries one column of `n_bytes` of automerge data may expand to: 16 per byte,
/// at least 1,024 and at most 1,048,576 (a grid's register holds some 100,000 operations;
/// compaction starts it anew).
///
/// The app's real documents and changes hold well under one operation per byte (the seeds
/// of `fuzz/corpus`: 0.001 to 0.08), since every operation names its own key or value;
/// only runs of the same key, value or deletion compress further, and the app makes none
/// long. What the limit bounds is work: loading, applying, checking and storing cost some
/// microseconds and some hundred bytes per operation, so the 1,024 per byte (4,194,304 at
/// most) allowed before let a 4 KB pushed change of 4 million operations take the server
/// 18 s and 1.7 GB (found by fuzzing `changes_apply`).
pub fn max_column_entries(n_bytes: usize) -> u64 {
    (n_bytes as u64).saturating_mul(16).clamp(1 << 10, 1 << 20)
}

/// The most bytes a deflated column or change in `n_bytes` of automerge data may inflate to:
/// 64 times `n_bytes`, at least 1 MiB (deflate compresses the app's data, JSON and
/// coordinates included, some 3 to 10 times). Past it the bytes are refused, not checked
/// in part: a column whose first megabytes are harmless could hide a run of 4 billion
/// behind them. Raw value columns are not inflated: they expand to no entries.
fn max_inflated_bytes(n_bytes: usize) -> u64 {
    (n_bytes as u64).saturating_mul(64).max(1 << 20)
}

/// What deflated bytes inflate to, within a limit.
enum Inflated {
    Bytes(Vec<u8>),
    /// Not deflate data: left to automerge, which refuses it.
    Broken,
    /// More than the limit.
    TooLarge,
}

fn inflate(deflated: &[u8], limit: u64) -> Inflated {
    let mut inflated = Vec::new();
    let mut decoder = flate2::read::DeflateDecoder::new(deflated).take(limit.saturating_add(1));
    if decoder.read_to_end(&mut inflated).is_err() {
        return Inflated::Broken;
    }
    if inflated.len() as u64 > limit { Inflated::TooLarge } else { Inflated::Bytes(inflated) }
}

/// Runs a decoder; its panic becomes [`Untrusted::Panicked`].
fn guarded<T, E: Into<Untrusted>>(decode: impl FnOnce() -> Result<T, E>) -> Result<T, Untrusted> {
    match catch_unwind(AssertUnwindSafe(decode)) {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(Untrusted::Panicked),
    }
}

/// [`AutoCommit::load`] of outside bytes, and a first reading of its change history: a
/// damaged document can load and still be inconsistent in a way that only reading its
/// changes shows (automerge 0.12 then panics in `get_changes`: `MissingOps` in
/// `op_set2/change/collector.rs`, found by fuzzing `document_load` from a one-byte change to
/// a device's sensitive document, which a device pulling it as a snapshot would have hit).
pub fn load(bytes: &[u8]) -> Result<AutoCommit, Untrusted> {
    check_columns(bytes)?;
    guarded(|| {
        let mut doc = AutoCommit::load(bytes)?;
        doc.get_changes(&[]);
        Ok::<_, automerge::AutomergeError>(doc)
    })
}

/// [`Change::from_bytes`] of outside bytes.
pub fn change(bytes: Vec<u8>) -> Result<Change, Untrusted> {
    check_columns(&bytes)?;
    guarded(|| Change::from_bytes(bytes))
}

/// [`AutoCommit::apply_changes`] of changes from outside. After an error the document may
/// hold part of them, and after [`Untrusted::Panicked`] it may be inconsistent: a caller
/// drops it (or reloads it from storage), as it does after any refused change.
pub fn apply_changes(doc: &mut AutoCommit, changes: Vec<Change>) -> Result<(), Untrusted> {
    guarded(|| doc.apply_changes(changes))
}

/// Counts what the columns of every chunk in `bytes` expand to. Bytes this cannot parse are
/// left to automerge, which refuses them; only an expansion past the limit is refused here.
fn check_columns(bytes: &[u8]) -> Result<(), Untrusted> {
    let limit = max_column_entries(bytes.len());
    let inflated_limit = max_inflated_bytes(bytes.len());
    let mut rest = bytes;
    while rest.len() >= 9 && rest[..4] == MAGIC {
        let chunk_type = rest[8];
        let mut reader = Reader(&rest[9..]);
        let Some(data) = reader.uleb().and_then(|len| reader.take(len)) else { return Ok(()) };
        let over = match chunk_type {
            0 | 1 | 3 => columns_over_limit(data, chunk_type, limit, inflated_limit),
            // A deflated change: inflated within the limit, then checked as a change.
            2 => match inflate(data, inflated_limit) {
                Inflated::Bytes(inflated) => columns_over_limit(&inflated, 1, limit, inflated_limit),
                Inflated::Broken => false,
                Inflated::TooLarge => true,
            },
            _ => false,
        };
        if over {
            return Err(Untrusted::TooLarge { limit });
        }
        rest = reader.0;
    }
    Ok(())
}

/// automerge's magic bytes, at the start of every chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Whether a column of a document (`chunk_type` 0), change (1) or bundle (3) chunk expands
/// past the limit (as far as the chunk parses).
fn columns_over_limit(data: &[u8], chunk_type: u8, limit: u64, inflated_limit: u64) -> bool {
    let mut over = false;
    let mut each = |spec: u64, column: &[u8]| over = over || expands_past(spec, column, limit, inflated_limit);
    let _ = match chunk_type {
        0 => walk_document(data, &mut each),
        3 => walk_bundle(data, &mut each),
        _ => walk_change(data, &mut each),
    };
    over
}

/// A bundle chunk (automerge 0.12 loads one like a document): dependencies, actors, the
/// change columns' metadata and data, then the operation columns' metadata and data. Left
/// out of the walk before, a 863-byte bundle whose delta column is a run of billions took
/// `AutoCommit::load` past 4 GB (found by fuzzing `document_load`).
fn walk_bundle(data: &[u8], each: &mut dyn FnMut(u64, &[u8])) -> Option<()> {
    let mut reader = Reader(data);
    let n_deps = reader.uleb()?;
    reader.take(n_deps.checked_mul(32)?)?;
    for _ in 0..reader.uleb()? {
        let len = reader.uleb()?;
        reader.take(len)?;
    }
    for _ in 0..2 {
        for (spec, len) in reader.column_metadata()? {
            each(spec, reader.take(len)?);
        }
    }
    Some(())
}

/// A document chunk: actors, heads, then the change columns' and the operation columns'
/// metadata, then their data.
fn walk_document(data: &[u8], each: &mut dyn FnMut(u64, &[u8])) -> Option<()> {
    let mut reader = Reader(data);
    for _ in 0..reader.uleb()? {
        let len = reader.uleb()?;
        reader.take(len)?;
    }
    let n_heads = reader.uleb()?;
    reader.take(n_heads.checked_mul(32)?)?;
    let change_columns = reader.column_metadata()?;
    let op_columns = reader.column_metadata()?;
    for (spec, len) in change_columns.into_iter().chain(op_columns) {
        each(spec, reader.take(len)?);
    }
    Some(())
}

/// A change chunk: dependencies, actor, sequence number, start op, time, message, other
/// actors, then the columns' metadata and data.
fn walk_change(data: &[u8], each: &mut dyn FnMut(u64, &[u8])) -> Option<()> {
    let mut reader = Reader(data);
    let n_deps = reader.uleb()?;
    reader.take(n_deps.checked_mul(32)?)?;
    let actor = reader.uleb()?;
    reader.take(actor)?;
    reader.uleb()?;
    reader.uleb()?;
    reader.sleb()?;
    let message = reader.uleb()?;
    reader.take(message)?;
    for _ in 0..reader.uleb()? {
        let len = reader.uleb()?;
        reader.take(len)?;
    }
    for (spec, len) in reader.column_metadata()? {
        each(spec, reader.take(len)?);
    }
    Some(())
}

/// Whether a column (inflated first, within `inflated_limit` bytes, when its spec says it
/// is deflated) expands to more entries than `limit`, or its group counts add up to more.
fn expands_past(spec: u64, column: &[u8], limit: u64, inflated_limit: u64) -> bool {
    // Raw values: as many bytes as they are, whatever they inflate to.
    if spec & 7 == 7 {
        return false;
    }
    let inflated;
    let column = if spec & 8 != 0 {
        inflated = match inflate(column, inflated_limit) {
            Inflated::Bytes(bytes) => bytes,
            Inflated::Broken => return false,
            Inflated::TooLarge => return true,
        };
        inflated.as_slice()
    } else {
        column
    };
    let mut reader = Reader(column);
    let (mut n_entries, mut n_grouped) = (0u64, 0u64);
    match spec & 7 {
        // Booleans: alternating run lengths.
        4 => {
            while !reader.0.is_empty() {
                let Some(run) = reader.uleb() else { break };
                n_entries = n_entries.saturating_add(run);
            }
        }
        // Raw values (returned above).
        7 => {}
        // Run-length encoded: a run of one value, a literal run, or a run of nulls.
        kind => {
            let value = |reader: &mut Reader<'_>| -> Option<u64> {
                match kind {
                    3 => reader.sleb().map(i64::unsigned_abs),
                    5 => {
                        let len = reader.uleb()?;
                        reader.take(len).map(|_| 0)
                    }
                    _ => reader.uleb(),
                }
            };
            while !reader.0.is_empty() {
                let Some(count) = reader.sleb() else { break };
                if count > 0 {
                    let Some(value) = value(&mut reader) else { break };
                    n_entries = n_entries.saturating_add(count.unsigned_abs());
                    n_grouped = n_grouped.saturating_add(value.saturating_mul(count.unsigned_abs()));
                } else if count < 0 {
                    for _ in 0..count.unsigned_abs() {
                        let Some(value) = value(&mut reader) else { break };
                        n_entries = n_entries.saturating_add(1);
                        n_grouped = n_grouped.saturating_add(value);
                    }
                } else {
                    let Some(nulls) = reader.uleb() else { break };
                    n_entries = n_entries.saturating_add(nulls);
                }
                if n_entries > limit {
                    return true;
                }
            }
            // A group column's values count the entries of the columns it groups.
            if kind != 0 {
                n_grouped = 0;
            }
        }
    }
    n_entries > limit || n_grouped > limit
}

/// LEB128 and slices over bytes, `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: u64) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(taken)
    }

    fn uleb(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn sleb(&mut self) -> Option<i64> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            if shift >= 64 {
                return None;
            }
            value |= i64::from(byte & 0x7f).checked_shl(shift)?;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Some(value);
            }
        }
    }

    fn column_metadata(&mut self) -> Option<Vec<(u64, u64)>> {
        let n = self.uleb()?;
        let mut columns = Vec::new();
        for _ in 0..n {
            columns.push((self.uleb()?, self.uleb()?));
        }
        Some(columns)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_column_that_expands_past_the_limit_is_refused_and_a_real_document_is_not() {
        let mut doc = crate::crdt::genesis_of(crate::crdt::DocKind::Register, "440703001001001");
        let saved = doc.save();
        assert!(load(&saved).is_ok());
        assert!(load(&doc.save_nocompress()).is_ok());
        // A uleb column of one run of 2^32 entries.
        assert!(expands_past(2, &[0x80, 0x80, 0x80, 0x80, 0x10, 0x01], max_column_entries(6), max_inflated_bytes(6)));
        assert!(!expands_past(2, &[0x7f, 0x01], max_column_entries(2), max_inflated_bytes(2)));
        // A run of 2,000 in 3 bytes: more than 16 entries per byte of a small input.
        assert!(expands_past(2, &[0xd0, 0x0f, 0x01], max_column_entries(3), max_inflated_bytes(3)));
    }

    #[test]
    fn a_deflated_column_that_inflates_past_the_limit_is_refused_unread() {
        use std::io::Write;
        // Null runs of no entries, harmless for megabytes: refused for their size alone.
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 4 << 20]).unwrap();
        let deflated = encoder.finish().unwrap();
        let n_bytes = deflated.len();
        assert!(expands_past(2 | 8, &deflated, max_column_entries(n_bytes), max_inflated_bytes(n_bytes)));
    }
}
