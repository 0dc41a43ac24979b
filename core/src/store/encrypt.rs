//! Turning a plain store into an encrypted one: apps that shipped before encryption have
//! plain stores on devices.
//!
//! [`Store::encrypt_plain`] copies the database into a new SQLCipher file beside it
//! (`<store>.encrypting`) with SQLCipher's `sqlcipher_export` — ATTACH the new file with
//! the key, export schema and rows, copy `user_version` — syncs it, checks that the key
//! opens it, renames it over the plain file and zeroes the plain file's old content
//! ([`crate::at_rest`]). Until the rename the plain store is whole and usable, and a
//! conversion run again starts over; after it, the store is encrypted. The copy carries a
//! mark that its blobs are still plain: the first keyed open (the conversion's own)
//! creates the blob key, seals every plain blob and every plain export beside the store
//! under it, zeroing the plaintext, and only then removes the mark — so a crash part way
//! is finished by the next open.
//!
//! ```no_run
//! # use wangge_core::{OpenOptions, Store};
//! # fn main() -> wangge_core::Result<()> {
//! let key = [0x2a; 32]; // kept by the app in Android Keystore / iOS Keychain
//! if Store::is_plain_file("/data/wangge.db")? {
//!     Store::encrypt_plain("/data/wangge.db", key)?;
//! }
//! let store = Store::open_with("/data/wangge.db", OpenOptions { key: Some(key), ..Default::default() })?;
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

use super::schema::{self, Header, SCHEMA_VERSION};
use super::{BlobKey, OpenFile, exports};
use crate::at_rest::{self, FileCipher};
use crate::blobs::BlobStore;
use crate::{Error, OpenOptions, Result, Store};

/// The encrypted copy in progress: `<store>.encrypting`.
pub(super) const TEMPORARY_SUFFIX: &str = ".encrypting";

/// In `meta` of a converted store until its plain blobs are sealed.
const SEAL_MARK: &str = "seal_plain_blobs";

impl Store {
    /// Whether the file at `path` is a plain (unencrypted) store, from its header alone:
    /// what [`Store::encrypt_plain`] converts. `false` for an encrypted store and for no
    /// file at all.
    pub fn is_plain_file(path: impl AsRef<Path>) -> Result<bool> {
        Ok(matches!(schema::read_header(path.as_ref())?, Header::Plain { .. }))
    }

    /// Encrypts the plain store at `path` with `key` (a raw 256-bit key, as
    /// [`OpenOptions::key`]): the database becomes SQLCipher, its blobs are sealed under a
    /// new blob key kept inside it, and so are the exports of removed documents; records,
    /// pending changes, the device's identity and its enrollment stay as they were. Then
    /// open it with the key. Crash-safe (see the module's documentation): run it again
    /// after an interruption.
    ///
    /// Nothing is changed, and the error says why, for a store open in this process
    /// ([`Error::AlreadyOpen`]), an encrypted one ([`Error::AlreadyEncrypted`] if `key`
    /// opens it, [`Error::WrongKey`] otherwise), one from a newer version
    /// ([`Error::IncompatibleVersion`]), or no store at all.
    pub fn encrypt_plain(path: impl AsRef<Path>, key: [u8; 32]) -> Result<()> {
        let path = path.as_ref();
        let claim = OpenFile::claim(path)?;
        match schema::read_header(path)? {
            Header::Missing => {
                return Err(
                    std::io::Error::new(ErrorKind::NotFound, "there is no store to encrypt at this path").into()
                );
            }
            Header::Plain { version } if version > SCHEMA_VERSION => {
                return Err(Error::IncompatibleVersion { found: version, supported: SCHEMA_VERSION });
            }
            Header::Plain { .. } => {}
            Header::NotPlain { .. } if key_opens(path, &key)? => return Err(Error::AlreadyEncrypted),
            Header::NotPlain { .. } => return Err(Error::WrongKey),
        }
        let temporary = side_path(path, TEMPORARY_SUFFIX);
        if let Err(error) = export_encrypted(path, &temporary, &key) {
            let _ = remove_temporary(&temporary);
            return Err(error);
        }
        at_rest::rename_zeroing(&temporary, path)?;
        drop(claim);
        // The first keyed open seals the blobs and exports (and would after a crash here).
        drop(Store::open_with(path, OpenOptions { key: Some(key), ..Default::default() })?);
        Ok(())
    }
}

/// Writes the encrypted copy of the plain store at `path` to `temporary`, synced and
/// checked, and leaves the plain store with everything in its main file (no log beside
/// it that could be replayed into the copy once it takes the store's name).
fn export_encrypted(path: &Path, temporary: &Path, key: &[u8; 32]) -> Result<()> {
    // An interrupted conversion's copy (ciphertext) starts over.
    remove_temporary(temporary)?;
    let conn = Connection::open(path)?;
    schema::apply_key(&conn, None)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let (busy, n_logged, n_checkpointed): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    if busy != 0 || n_logged != n_checkpointed {
        return Err(log_in_use());
    }
    let version: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let temporary_name = temporary
        .to_str()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "the store's path is not valid UTF-8"))?;
    conn.execute("ATTACH DATABASE ?1 AS encrypted KEY ?2", params![temporary_name, schema::key_literal(key)])?;
    conn.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
    conn.pragma_update(Some("encrypted"), "user_version", version)?;
    conn.execute("INSERT OR REPLACE INTO encrypted.meta (key, value) VALUES (?1, 1)", [SEAL_MARK])?;
    conn.execute_batch("DETACH DATABASE encrypted")?;
    // SQLite deletes the log when its last connection closes; its blocks are zeroed
    // through a handle that outlives the name.
    let log = open_if_there(&side_path(path, "-wal"))?;
    conn.close().map_err(|(_, error)| error)?;
    if side_path(path, "-wal").exists() || side_path(path, "-journal").exists() {
        return Err(log_in_use());
    }
    if let Some(log) = log {
        at_rest::zero(&log)?;
    }
    // The shared-memory index holds page numbers, no content; without a log it is stale.
    at_rest::zero_and_remove(&side_path(path, "-shm"))?;

    File::open(temporary)?.sync_all()?;
    let copy = Connection::open_with_flags(temporary, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    schema::apply_key(&copy, Some(key))?;
    schema::check_key(&copy)?;
    let copied: u32 = copy.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let check: String = copy.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if copied != version || check != "ok" {
        return Err(
            std::io::Error::other("the encrypted copy does not check out: the plain store was left as it was").into()
        );
    }
    Ok(())
}

/// The end of a conversion, on every keyed open: plain exports beside the store are
/// sealed, and, while the conversion's mark is there, plain blobs.
pub(super) fn finish_sealing(path: &Path, conn: &Connection, blob_key: BlobKey) -> Result<()> {
    exports::seal_plain(path, &FileCipher::new(&blob_key.0))?;
    let marked: bool = conn.query_row("SELECT count(*) > 0 FROM meta WHERE key = ?1", [SEAL_MARK], |row| row.get(0))?;
    if marked {
        BlobStore::seal_plain(&BlobStore::dir_for(path), &blob_key.0)?;
        conn.execute("DELETE FROM meta WHERE key = ?1", [SEAL_MARK])?;
    }
    Ok(())
}

/// Whether `key` opens the (not plain) file at `path`. Opened as immutable: a read-only
/// connection to a store in WAL mode would otherwise create its `-wal` and `-shm`.
fn key_opens(path: &Path, key: &[u8; 32]) -> Result<bool> {
    let name = path
        .to_str()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "the store's path is not valid UTF-8"))?;
    let uri = format!("file:{}?immutable=1", name.replace('%', "%25").replace('?', "%3f").replace('#', "%23"));
    let conn = Connection::open_with_flags(uri, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI)?;
    schema::apply_key(&conn, Some(key))?;
    match schema::check_key(&conn) {
        Ok(()) => Ok(true),
        Err(Error::WrongKey) => Ok(false),
        Err(error) => Err(error),
    }
}

fn log_in_use() -> Error {
    std::io::Error::other(
        "the store's write-ahead log could not be emptied (is another process using it?): nothing was changed",
    )
    .into()
}

fn remove_temporary(temporary: &Path) -> Result<()> {
    for file in [temporary.to_path_buf(), side_path(temporary, "-journal")] {
        match std::fs::remove_file(&file) {
            Err(error) if error.kind() != ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        }
    }
    Ok(())
}

fn open_if_there(path: &Path) -> Result<Option<File>> {
    match File::options().write(true).open(path) {
        Ok(file) => Ok(Some(file)),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn side_path(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::blobs::BlobHash;

    /// A crash right after the rename leaves the mark in the encrypted store and its blobs
    /// still plain: the next keyed open seals them and removes the mark.
    #[test]
    fn a_keyed_open_finishes_a_conversion_cut_off_after_its_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wangge.db");
        let key = [0x3c; 32];
        let photo = b"a plain photo of a cracked wall".repeat(40);
        let hash = {
            let store = Store::open(&path).unwrap();
            BlobStore::beside(&store, 1 << 20).unwrap().put(&photo).unwrap()
        };
        Store::encrypt_plain(&path, key).unwrap();
        let blob_file = BlobStore::dir_for(&path).join(hash.hex());
        assert_ne!(std::fs::read(&blob_file).unwrap(), photo);

        // Back to the state the crash would have left.
        std::fs::write(&blob_file, &photo).unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            schema::apply_key(&conn, Some(&key)).unwrap();
            conn.execute("INSERT INTO meta (key, value) VALUES (?1, 1)", [SEAL_MARK]).unwrap();
        }

        let store = Store::open_with(&path, OpenOptions { key: Some(key), ..Default::default() }).unwrap();
        let sealed = std::fs::read(&blob_file).unwrap();
        assert!(!sealed.windows(20).any(|window| window == &photo[..20]));
        assert_eq!(BlobStore::beside(&store, 1 << 20).unwrap().get(&hash).unwrap().unwrap(), photo);
        assert_eq!(BlobHash::of(&photo), hash);
        let marked: bool = store
            .with_reader(|conn| {
                conn.query_row("SELECT count(*) > 0 FROM meta WHERE key = ?1", [SEAL_MARK], |row| row.get(0))
            })
            .unwrap();
        assert!(!marked);
    }
}
