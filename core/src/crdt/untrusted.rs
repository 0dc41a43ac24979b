//! Decoding automerge bytes that came from outside (a pushed change, a pulled snapshot, an
//! export file) without letting a damaged or hostile input take the process down.
//!
//! automerge 0.12 panics on some malformed documents and changes instead of returning an
//! error: fuzzing found `AutoCommit::load` stopping in its column decoder (`hexane`:
//! "RawColumnIter::take would cross slab boundary") on a saved document with one byte
//! changed. Until automerge returns errors there, every decoder of outside input goes
//! through these functions, which turn such a panic into [`Untrusted::Panicked`].
//!
//! ```
//! # use wangge_core::crdt::untrusted;
//! let error = untrusted::load(b"\x85\x6f\x4a\x83 not a document").unwrap_err();
//! assert!(error.to_string().starts_with("not an automerge document"));
//! ```

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
}

/// Runs a decoder; its panic becomes [`Untrusted::Panicked`].
fn guarded<T, E: Into<Untrusted>>(decode: impl FnOnce() -> Result<T, E>) -> Result<T, Untrusted> {
    match catch_unwind(AssertUnwindSafe(decode)) {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(Untrusted::Panicked),
    }
}

/// [`AutoCommit::load`] of outside bytes.
pub fn load(bytes: &[u8]) -> Result<AutoCommit, Untrusted> {
    guarded(|| AutoCommit::load(bytes))
}

/// [`Change::from_bytes`] of outside bytes.
pub fn change(bytes: Vec<u8>) -> Result<Change, Untrusted> {
    guarded(|| Change::from_bytes(bytes))
}

/// [`AutoCommit::apply_changes`] of changes from outside. After an error the document may
/// hold part of them, and after [`Untrusted::Panicked`] it may be inconsistent: a caller
/// drops it (or reloads it from storage), as it does after any refused change.
pub fn apply_changes(doc: &mut AutoCommit, changes: Vec<Change>) -> Result<(), Untrusted> {
    guarded(|| doc.apply_changes(changes))
}
