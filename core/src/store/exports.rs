//! Exports of removed documents. When a document leaves the device (a reassigned
//! worker's old grid, a push the server refused for good), the device's own changes that
//! the server has not acknowledged go to a file beside the store first, so that no field
//! work is lost: `<store>.removed-<kind>-<key>-<ms>.changes`.
//! [`Store::read_removed_changes`] reads one back for [`Store::apply_changes`].
//!
//! A plain store writes the changes as automerge encodes them, one after the other. A
//! keyed store seals them ([`crate::at_rest`]): a magic line, then the nonce, the
//! ciphertext and its tag, with the document's id in the associated data, so an export
//! renamed to another document's name does not open. When a keyed store opens, any plain
//! export beside it (written before it was encrypted) is sealed in place.
//!
//! ```no_run
//! # fn main() -> wangge_core::Result<()> {
//! # let store = wangge_core::Store::open("/data/wangge.db")?;
//! # let path = std::path::Path::new("/data/wangge.db.removed-register-440703001001001-1767225600000.changes");
//! let removed = store.read_removed_changes(path)?;
//! store.apply_changes(&removed.doc, &removed.changes)?;
//! # Ok(()) }
//! ```

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::at_rest::{self, FileCipher};
use crate::crdt::{DocId, DocKind};
use crate::{Error, Result, Store};

/// The first bytes of a sealed export (a plain one starts with automerge's magic bytes).
const SEALED_MAGIC: &[u8] = b"wangge sealed changes v1\n";

/// The changes of a removed document, read back from its export.
#[derive(Clone, PartialEq, Eq)]
pub struct RemovedChanges {
    /// The document they belong to, from the export's name.
    pub doc: DocId,
    /// Encoded automerge changes, oldest first: what [`Store::apply_changes`] takes.
    pub changes: Vec<Vec<u8>>,
}

/// The changes hold residents' data: only their number is printed.
impl std::fmt::Debug for RemovedChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemovedChanges").field("doc", &self.doc).field("n_changes", &self.changes.len()).finish()
    }
}

impl Store {
    /// Reads an export of a removed document (the file [`Store::purge_document`] wrote)
    /// back: its document and its changes, for [`Store::apply_changes`] on a store that
    /// holds the document. A keyed store reads only exports sealed with its own blob key
    /// (kept inside the database, so re-keying keeps them readable); a plain store only
    /// plain ones. A file that cannot be read — sealed with another store's key, altered,
    /// cut short, or not an export — is [`Error::ExportUnreadable`], saying which.
    pub fn read_removed_changes(&self, path: impl AsRef<Path>) -> Result<RemovedChanges> {
        let cipher = self.blob_key().map(|key| FileCipher::new(&key.0));
        read(path.as_ref(), cipher.as_ref())
    }
}

/// Writes a removed document's unacknowledged changes beside the store (sealed when
/// `cipher` is given), durably, and returns the file's path; `time_ms` (the store's clock)
/// tells exports of the same document apart.
pub(super) fn write(
    store_path: &Path,
    doc: &DocId,
    changes: &[u8],
    cipher: Option<&FileCipher>,
    time_ms: i64,
) -> Result<PathBuf> {
    let path =
        PathBuf::from(format!("{}.removed-{}-{}-{}.changes", store_path.display(), doc.kind.code(), doc.key, time_ms));
    let bytes = match cipher {
        Some(cipher) => seal(cipher, doc, changes)?,
        None => changes.to_vec(),
    };
    at_rest::replace_zeroing(&path, &temporary_for(&path), &bytes)?;
    Ok(path)
}

/// Seals every plain export beside a store that now has a key; sealed ones are left as
/// they are. Returns how many were sealed.
pub(super) fn seal_plain(store_path: &Path, cipher: &FileCipher) -> Result<usize> {
    let name = store_path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let directory = store_path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut n_sealed = 0;
    for entry in fs::read_dir(directory)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if !file_name.starts_with(&format!("{name}.removed-")) || !file_name.ends_with(".changes") {
            continue;
        }
        let path = entry.path();
        let Some(doc) = doc_of(&path) else { continue };
        let bytes = fs::read(&path)?;
        if bytes.starts_with(SEALED_MAGIC) {
            continue;
        }
        at_rest::replace_zeroing(&path, &temporary_for(&path), &seal(cipher, &doc, &bytes)?)?;
        n_sealed += 1;
    }
    Ok(n_sealed)
}

fn read(path: &Path, cipher: Option<&FileCipher>) -> Result<RemovedChanges> {
    let file = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let unreadable = |reason: &'static str| Error::ExportUnreadable { file: file.clone(), reason };
    let doc = doc_of(path)
        .ok_or_else(|| unreadable("the name is not an export's (<store>.removed-<kind>-<key>-<ms>.changes)"))?;
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == ErrorKind::NotFound => return Err(unreadable("there is no such file")),
        Err(error) => return Err(error.into()),
    };
    let plain = match (bytes.strip_prefix(SEALED_MAGIC), cipher) {
        (Some(sealed), Some(cipher)) => cipher
            .open(&associated_data(&doc), sealed)
            .map_err(|_| unreadable("it does not decrypt with this store's key, or it was altered"))?,
        (Some(_), None) => return Err(unreadable("it is encrypted: read it with the keyed store that wrote it")),
        (None, Some(_)) => {
            return Err(unreadable("it is not encrypted, and an encrypted store reads only sealed exports"));
        }
        (None, None) => bytes,
    };
    let changes = split_changes(&plain).ok_or_else(|| unreadable("its changes are damaged or cut short"))?;
    for change in &changes {
        crate::crdt::untrusted::change(change.clone()).map_err(|_| unreadable("its changes are damaged"))?;
    }
    Ok(RemovedChanges { doc, changes })
}

fn seal(cipher: &FileCipher, doc: &DocId, changes: &[u8]) -> Result<Vec<u8>> {
    let sealed = cipher.seal(&associated_data(doc), changes)?;
    Ok([SEALED_MAGIC, &sealed].concat())
}

/// What a sealed export is: binds it to its document.
fn associated_data(doc: &DocId) -> Vec<u8> {
    format!("wangge removed changes of {doc}").into_bytes()
}

/// Beside the export, with a name [`crate::wipe_files`] removes with the exports.
fn temporary_for(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The document of an export, from its name: `….removed-<kind>-<key>-<ms>.changes`.
fn doc_of(path: &Path) -> Option<DocId> {
    let name = path.file_name()?.to_str()?;
    let (_, rest) = name.rsplit_once(".removed-")?;
    let rest = rest.strip_suffix(".changes")?;
    let (kind, rest) = rest.split_once('-')?;
    let (key, ms) = rest.rsplit_once('-')?;
    if key.is_empty() || ms.is_empty() || !ms.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(DocId { kind: DocKind::from_code(kind)?, key: key.to_owned() })
}

/// Splits automerge changes written one after the other into single changes, by their
/// chunk headers (magic bytes, checksum, chunk type, LEB128 length); `None` if the bytes
/// are not whole chunks.
fn split_changes(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let mut changes = Vec::new();
    while !bytes.is_empty() {
        if bytes.get(..4)? != MAGIC {
            return None;
        }
        // Magic, checksum, chunk type, then the length.
        let mut at = 9;
        let (mut len, mut shift) = (0u64, 0u32);
        loop {
            let byte = *bytes.get(at)?;
            at += 1;
            len |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        changes.push(bytes.get(..end)?.to_vec());
        bytes = &bytes[end..];
    }
    Some(changes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[track_caller]
    fn check_name(name: &str, expected: Option<&str>) {
        assert_eq!(doc_of(Path::new(name)).map(|doc| doc.to_string()).as_deref(), expected, "{name}");
    }

    #[test]
    fn an_exports_document_comes_from_its_name() {
        check_name("/d/w.db.removed-register-440703001001001-1767225600000.changes", Some("register/440703001001001"));
        check_name(
            "w.db.removed-activity-440703001001001:2026-01-17672.changes",
            Some("activity/440703001001001:2026-01"),
        );
        check_name(
            "a.removed-x.db.removed-incident-01900000-0000-7000-8000-000000000001-5.changes",
            Some("incident/01900000-0000-7000-8000-000000000001"),
        );
        check_name("w.db.removed-register-440703001001001-17672.changes.tmp", None);
        check_name("w.db.removed-unknown-440703001001001-17672.changes", None);
        check_name("w.db.removed-register-440703001001001.changes", None);
        check_name("w.db", None);
    }

    #[test]
    fn changes_split_at_their_chunk_boundaries_and_nothing_else_does() {
        use automerge::transaction::Transactable;
        let mut doc = automerge::AutoCommit::new();
        for i in 0..3_i64 {
            doc.put(automerge::ROOT, "n", i).unwrap();
            doc.commit();
        }
        let changes: Vec<Vec<u8>> =
            doc.get_changes(&[]).into_iter().map(|change| change.raw_bytes().to_vec()).collect();
        assert_eq!(changes.len(), 3);
        let joined = changes.concat();
        assert_eq!(split_changes(&joined).unwrap(), changes);
        assert_eq!(split_changes(&[]).unwrap(), Vec::<Vec<u8>>::new());
        for cut in [1, 5, 9, joined.len() - 1] {
            assert!(split_changes(&joined[..cut]).is_none(), "cut at {cut}");
        }
        assert!(split_changes(b"not automerge").is_none());
        // A length that overflows is refused, not wrapped.
        let mut huge = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1];
        huge.extend([0xff; 10]);
        huge.push(0x01);
        assert!(split_changes(&huge).is_none());
    }
}
