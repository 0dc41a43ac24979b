//! Attachments (photos now, tracks later) as content-addressed blobs, kept on the device
//! in a directory beside its store.
//!
//! A blob is named by the SHA-256 of its bytes, written `sha256:` and 64 lowercase hex
//! digits ([`BlobHash`]); documents carry only that name (an incident's `photos`, an
//! action's `evidence`). The bytes travel separately, in chunks, on the sync server's blob
//! endpoints (`sync::http::SyncClient::upload_blob`, `download_blob`;
//! `docs/sync-protocol.md` §9).
//!
//! ```text
//! let blobs = BlobStore::beside(&store, 200 * 1024 * 1024)?;
//! let photo = blobs.put(&jpeg)?;                // pending upload until the server has it
//! store.report_incident(NewIncident { photos: vec![photo.to_string()], .. }, me)?;
//! client.sync(&store, None).await?;
//! client.upload_pending_blobs(&store, &blobs).await?;
//! ```
//!
//! The directory is a cache with a size limit, except for what only this device has: a
//! blob put here stays *pending* (a marker in `pending/`) until the server confirms it
//! whole, and a pending blob is never trimmed. Everything else goes least recently used
//! first once the directory is over its size (each `get` and write sets the file's
//! modification time; the order is all that matters, so a wrong device clock at worst
//! evicts the wrong photo first, which can be downloaded again).
//!
//! Layout: `<hex>` (a blob), `pending/<hex>` (empty: not yet uploaded), `partial/<hex>`
//! (a download in progress, resumed from its length), `tmp-…` (a write in progress:
//! renamed into place when complete, so a blob file is always whole; removed on open).
//!
//! Beside an encrypted store ([`crate::OpenOptions::key`]) every file with content is
//! encrypted at rest with ChaCha20-Poly1305 under the store's blob key (random, kept
//! inside the encrypted database): a blob is a 12-byte random nonce and the ciphertext
//! with its tag (the blob's name is the associated data); a download in progress is a
//! series of such frames, each after its 4-byte plaintext length. Names stay the SHA-256
//! of the plaintext. A file that does not decrypt is [`Error::BlobUnreadable`].

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::at_rest::{self, FileCipher, NONCE_BYTES, TAG_BYTES};

use crate::model::{Invalid, InvalidField};
use crate::store::Store;
use crate::sync::wire::MAX_BLOB_BYTES;
use crate::{Error, Result};

/// A blob's name: `sha256:` and the 64 lowercase hex digits of the SHA-256 of its bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(String);

const PREFIX: &str = "sha256:";

impl BlobHash {
    /// The name of these bytes.
    pub fn of(bytes: &[u8]) -> BlobHash {
        let hex: String = Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect();
        BlobHash(format!("{PREFIX}{hex}"))
    }

    /// Reads a name as documents carry it (hex digits in either case; kept lowercase).
    pub fn parse(text: &str) -> Result<BlobHash, InvalidField> {
        match text.strip_prefix(PREFIX) {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()) => {
                Ok(BlobHash(format!("{PREFIX}{}", hex.to_ascii_lowercase())))
            }
            _ => {
                Err(InvalidField::new("blob", Invalid::Rule("a blob is named by its hash: sha256: and 64 hex digits")))
            }
        }
    }

    /// The whole name, `sha256:…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits (the file name).
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.0)
    }
}

/// A file operation of the blob store, as [`BLOB_FILE_FAULT`] sees it. Test-only.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobFileOp {
    /// Writing a temporary file's bytes (the path is the temporary file's), or appending a
    /// download's chunk (the partial file's).
    Write,
    /// Syncing that file.
    Sync,
    /// Renaming a temporary file into place (the path is the temporary file's).
    Rename,
    /// Syncing the directory after the rename (the path is the renamed file's).
    SyncDirectory,
    /// Reading a blob, or a finished download, back (the path is that file's).
    Read,
}

/// A test's way to make the blob store's file operations fail (`tests/tests/disk_full.rs`:
/// a full disk, an I/O error): if set, called before each operation with the file it is
/// about to touch, and an error it returns takes the operation's place (for a
/// directory sync, the `fsync`'s: it meets the same rule, see `at_rest::sync_directory_of`).
/// The hook decides which paths it fails, so tests running at once do not meet each
/// other's faults. Unset it costs one atomic load per operation. Never set outside tests.
#[doc(hidden)]
pub static BLOB_FILE_FAULT: OnceLock<fn(BlobFileOp, &Path) -> Option<io::Error>> = OnceLock::new();

/// The error [`BLOB_FILE_FAULT`] injects into `op` on `path`, if any.
fn injected(op: BlobFileOp, path: &Path) -> io::Result<()> {
    match BLOB_FILE_FAULT.get().and_then(|hook| hook(op, path)) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The device's blobs: a directory of files named by their hash, kept within a size.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    max_bytes: u64,
    /// The last access time written: each is later than the one before, so the LRU order
    /// is strict even within one tick of a coarse clock.
    last_touch: Mutex<SystemTime>,
    /// `Some` beside an encrypted store.
    cipher: Option<FileCipher>,
}

/// A blob's sealed file: its name is the associated data (see [`crate::at_rest`]).
impl FileCipher {
    fn seal_blob(&self, hash: &BlobHash, plain: &[u8]) -> Result<Vec<u8>> {
        self.seal(hash.as_str().as_bytes(), plain)
    }

    fn open_blob(&self, hash: &BlobHash, sealed: &[u8]) -> Result<Vec<u8>> {
        self.open(hash.as_str().as_bytes(), sealed).map_err(|_| Error::BlobUnreadable { hash: hash.to_string() })
    }
}

impl BlobStore {
    /// The blob directory of a store: `<store file>.blobs`.
    pub fn dir_for(store_path: &Path) -> PathBuf {
        let mut name = store_path.file_name().map(|name| name.to_os_string()).unwrap_or_default();
        name.push(".blobs");
        store_path.with_file_name(name)
    }

    /// Opens (or creates) the blob directory beside `store`, kept within `max_bytes` (not
    /// counting blobs still pending upload).
    /// Beside an encrypted store, the blobs are encrypted with its blob key.
    pub fn beside(store: &Store, max_bytes: u64) -> Result<BlobStore> {
        let mut blobs = Self::open(Self::dir_for(store.path()), max_bytes)?;
        blobs.cipher = store.blob_key().map(|key| FileCipher::new(&key.0));
        Ok(blobs)
    }

    /// Opens a blob directory whose files are encrypted with `key` (what
    /// [`BlobStore::beside`] does for an encrypted store; tests give keys of their own).
    pub fn open_encrypted(dir: impl AsRef<Path>, max_bytes: u64, key: [u8; 32]) -> Result<BlobStore> {
        let mut blobs = Self::open(dir, max_bytes)?;
        blobs.cipher = Some(FileCipher::new(&key));
        Ok(blobs)
    }

    /// Opens (or creates) a blob directory kept within `max_bytes`. Writes cut off by a
    /// crash are removed.
    pub fn open(dir: impl AsRef<Path>, max_bytes: u64) -> Result<BlobStore> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(dir.join("pending"))?;
        fs::create_dir_all(dir.join("partial"))?;
        let mut last_touch = SystemTime::UNIX_EPOCH;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("tmp-") {
                remove_if_there(&entry.path())?;
            } else if is_hex_name(&name) {
                last_touch = last_touch.max(entry.metadata()?.modified()?);
            }
        }
        Ok(BlobStore { dir, max_bytes, last_touch: Mutex::new(last_touch), cipher: None })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size this store is trimmed to after every write.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Stores bytes taken on this device (a photo) and returns their name. The blob stays
    /// pending upload, and is never trimmed, until [`BlobStore::mark_uploaded`].
    ///
    /// `Ok` means the blob and its marker are written, synced and renamed into place, and
    /// their directories synced: they survive a power cut. A write, sync, rename or
    /// directory sync that fails (a full disk: `Error::Io` of kind `StorageFull`) fails the
    /// put, and what it wrote is removed (a temporary file that cannot be is removed when
    /// the store next opens): the caller has no name to record, and a later put of the same
    /// bytes writes them again.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobHash> {
        let size = bytes.len() as u64;
        if size > MAX_BLOB_BYTES {
            return Err(Error::BlobTooLarge { size, limit: MAX_BLOB_BYTES });
        }
        let hash = BlobHash::of(bytes);
        // The marker first: a crash between the two leaves a marker without a blob (nothing
        // to upload), never a blob of this device's that a trim may delete.
        let new_marker = !self.is_pending(&hash);
        if new_marker {
            self.write_atomically(&self.pending_path(&hash), &[])?;
        }
        if let Err(error) = self.store(&hash, bytes) {
            // A failed put leaves no marker of its own behind (one without its blob would
            // be skipped anyway; removed, a retry starts from nothing).
            if new_marker {
                let _ = remove_if_there(&self.pending_path(&hash));
            }
            return Err(error);
        }
        Ok(hash)
    }

    /// Stores bytes received from the server under their name, after checking that they
    /// are what the name says ([`Error::BlobMismatch`] otherwise). Not pending.
    pub fn insert(&self, hash: &BlobHash, bytes: &[u8]) -> Result<()> {
        if BlobHash::of(bytes) != *hash {
            return Err(Error::BlobMismatch { hash: hash.to_string() });
        }
        self.store(hash, bytes)
    }

    /// A blob's bytes, if it is here; counts as a use (it becomes the last to be trimmed).
    pub fn get(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(hash);
        match injected(BlobFileOp::Read, &path).and_then(|()| fs::read(&path)) {
            Ok(bytes) => {
                let bytes = match &self.cipher {
                    Some(cipher) => cipher.open_blob(hash, &bytes)?,
                    None => bytes,
                };
                self.touch(&path)?;
                Ok(Some(bytes))
            }
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    pub fn contains(&self, hash: &BlobHash) -> bool {
        self.blob_path(hash).is_file()
    }

    /// Bytes of all blobs here (pending or not; not downloads in progress).
    pub fn len_bytes(&self) -> Result<u64> {
        Ok(self.blobs()?.iter().map(|blob| blob.size).sum())
    }

    /// Blobs put on this device that the server does not have whole yet, in name order.
    /// A marker whose blob is missing (a crash inside `put`) is skipped.
    pub fn pending_uploads(&self) -> Result<Vec<BlobHash>> {
        let mut pending = Vec::new();
        for entry in fs::read_dir(self.dir.join("pending"))? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if !is_hex_name(&name) {
                continue;
            }
            let hash = BlobHash(format!("{PREFIX}{name}"));
            if self.contains(&hash) {
                pending.push(hash);
            }
        }
        pending.sort();
        Ok(pending)
    }

    pub fn is_pending(&self, hash: &BlobHash) -> bool {
        self.pending_path(hash).is_file()
    }

    /// The server has the blob whole: from now on it may be trimmed like any other.
    pub fn mark_uploaded(&self, hash: &BlobHash) -> Result<()> {
        remove_if_there(&self.pending_path(hash))
    }

    /// Deletes blobs, least recently used first, until the directory holds at most
    /// `max_bytes`; never a blob pending upload, nor one `keep` asks for (an open
    /// incident's photos, say). Returns the bytes freed. The directory may stay over the
    /// size if what must be kept is larger.
    pub fn trim_to(&self, max_bytes: u64, keep: &dyn Fn(&BlobHash) -> bool) -> Result<u64> {
        let mut blobs = self.blobs()?;
        let mut total: u64 = blobs.iter().map(|blob| blob.size).sum();
        if total <= max_bytes {
            return Ok(0);
        }
        blobs.sort_by(|a, b| a.used.cmp(&b.used).then_with(|| a.hash.cmp(&b.hash)));
        let mut freed = 0;
        for blob in blobs {
            if total <= max_bytes {
                break;
            }
            if self.is_pending(&blob.hash) || keep(&blob.hash) {
                continue;
            }
            remove_if_there(&self.blob_path(&blob.hash))?;
            total -= blob.size;
            freed += blob.size;
        }
        Ok(freed)
    }

    /// Deletes the cached copies of blobs that a document leaving the device referred to
    /// (in the blob directory beside the store at `store_path`), except blobs pending
    /// upload (this device's only copy). Blobs are a cache: one that another document on
    /// the device also names is downloaded again when shown. Returns how many were deleted.
    pub(crate) fn forget_cached(store_path: &Path, hashes: &[String]) -> Result<usize> {
        let dir = Self::dir_for(store_path);
        let mut n = 0;
        for hash in hashes.iter().filter_map(|hash| BlobHash::parse(hash).ok()) {
            if dir.join("pending").join(hash.hex()).exists() {
                continue;
            }
            let blob = dir.join(hash.hex());
            if blob.exists() {
                remove_if_there(&blob)?;
                n += 1;
            }
            remove_if_there(&dir.join("partial").join(hash.hex()))?;
        }
        Ok(n)
    }

    /// [`BlobStore::trim_to`] this store's own size, keeping only pending blobs.
    pub fn trim(&self) -> Result<u64> {
        self.trim_to(self.max_bytes, &|_| false)
    }

    /// Seals the blobs of a store that was plain until now (see
    /// [`crate::Store::encrypt_plain`]): each blob file still in plaintext (its content has
    /// the hash it is named by) is replaced by its sealed form and its old content zeroed;
    /// downloads in progress are zeroed and dropped (they start again). Sealed files are
    /// left as they are, so an interrupted run can simply run again. Returns the number of
    /// blobs sealed.
    pub(crate) fn seal_plain(dir: &Path, key: &[u8; 32]) -> Result<usize> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error.into()),
        };
        let cipher = FileCipher::new(key);
        let mut n_sealed = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !is_hex_name(&name) {
                continue;
            }
            let hash = BlobHash(format!("{PREFIX}{name}"));
            let bytes = fs::read(entry.path())?;
            if BlobHash::of(&bytes) != hash {
                continue;
            }
            // The time of last use orders trimming: the sealed file keeps it.
            let used = entry.metadata()?.modified()?;
            let temporary = dir.join(format!("tmp-{}", uuid::Uuid::new_v4()));
            at_rest::replace_zeroing(&entry.path(), &temporary, &cipher.seal_blob(&hash, &bytes)?)?;
            OpenOptions::new().write(true).open(entry.path())?.set_modified(used)?;
            n_sealed += 1;
        }
        match fs::read_dir(dir.join("partial")) {
            Ok(entries) => {
                for entry in entries {
                    at_rest::zero_and_remove(&entry?.path())?;
                }
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
        Ok(n_sealed)
    }

    /// Bytes of a download in progress (where it resumes).
    /// (Encrypted: the plaintext bytes of the whole frames; a frame cut off by a crash
    /// is cut from the file.)
    pub(crate) fn partial_len(&self, hash: &BlobHash) -> Result<u64> {
        let path = self.partial_path(hash);
        let Some(_) = &self.cipher else {
            return match fs::metadata(&path) {
                Ok(metadata) => Ok(metadata.len()),
                Err(error) if error.kind() == ErrorKind::NotFound => Ok(0),
                Err(error) => Err(error.into()),
            };
        };
        let file = match fs::read(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error.into()),
        };
        let (plain_len, whole) = frames(&file);
        if whole < file.len() {
            OpenOptions::new().write(true).open(&path)?.set_len(whole as u64)?;
        }
        Ok(plain_len)
    }

    /// Appends the next chunk of a download in progress.
    pub(crate) fn append_partial(&self, hash: &BlobHash, chunk: &[u8]) -> Result<()> {
        let framed;
        let bytes = match &self.cipher {
            Some(cipher) => {
                let sealed = cipher.seal_blob(hash, chunk)?;
                let len = u32::try_from(chunk.len())
                    .map_err(|_| Error::BlobTooLarge { size: chunk.len() as u64, limit: u64::from(u32::MAX) })?;
                framed = [len.to_le_bytes().as_slice(), &sealed].concat();
                &framed
            }
            None => chunk,
        };
        let path = self.partial_path(hash);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        injected(BlobFileOp::Write, &path)?;
        file.write_all(bytes)?;
        injected(BlobFileOp::Sync, &path)?;
        file.sync_data()?;
        Ok(())
    }

    /// Ends a download: checks the bytes against the name and stores them, or discards
    /// them ([`Error::BlobMismatch`]).
    pub(crate) fn finish_partial(&self, hash: &BlobHash) -> Result<Vec<u8>> {
        let path = self.partial_path(hash);
        let file = injected(BlobFileOp::Read, &path).and_then(|()| fs::read(&path))?;
        let bytes = match &self.cipher {
            Some(cipher) => {
                let mut plain = Vec::new();
                let mut rest = file.as_slice();
                let opened = loop {
                    if rest.is_empty() {
                        break Ok(());
                    }
                    let Some(size) = frame_size(rest) else {
                        break Err(Error::BlobMismatch { hash: hash.to_string() });
                    };
                    match cipher.open_blob(hash, &rest[4..size]) {
                        Ok(chunk) => plain.extend_from_slice(&chunk),
                        Err(error) => break Err(error),
                    }
                    rest = &rest[size..];
                };
                if let Err(error) = opened {
                    remove_if_there(&path)?;
                    return Err(error);
                }
                plain
            }
            None => file,
        };
        let stored = self.insert(hash, &bytes);
        remove_if_there(&path)?;
        stored.map(|()| bytes)
    }

    pub(crate) fn discard_partial(&self, hash: &BlobHash) -> Result<()> {
        remove_if_there(&self.partial_path(hash))
    }

    fn store(&self, hash: &BlobHash, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(hash);
        if path.is_file() {
            self.touch(&path)?;
        } else {
            match &self.cipher {
                Some(cipher) => self.write_atomically(&path, &cipher.seal_blob(hash, bytes)?)?,
                None => self.write_atomically(&path, bytes)?,
            }
            self.touch(&path)?;
        }
        self.trim_to(self.max_bytes, &|kept| kept == hash)?;
        Ok(())
    }

    /// Writes a temporary file, syncs it, renames it into place and syncs the directory:
    /// a reader never sees half a blob, and `Ok` means the file survives a power cut.
    /// On an error nothing stays: the temporary file is removed, and so is the renamed file
    /// if the directory sync failed (a power cut could still undo that rename, and a file
    /// left there would be taken as stored by the next write of the same bytes, which
    /// would then not sync the directory).
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let temporary = self.dir.join(format!("tmp-{}", uuid::Uuid::new_v4()));
        let written = (|| {
            let mut file = File::create(&temporary)?;
            injected(BlobFileOp::Write, &temporary)?;
            file.write_all(bytes)?;
            injected(BlobFileOp::Sync, &temporary)?;
            file.sync_all()?;
            injected(BlobFileOp::Rename, &temporary)?;
            fs::rename(&temporary, path)
        })();
        if let Err(error) = written {
            let _ = fs::remove_file(&temporary);
            return Err(error.into());
        }
        let synced = at_rest::sync_directory_with(path, |directory| {
            injected(BlobFileOp::SyncDirectory, path)?;
            directory.sync_all()
        });
        if let Err(error) = synced {
            let _ = fs::remove_file(path);
            return Err(error.into());
        }
        Ok(())
    }

    /// Marks a blob as just used, strictly after every blob used before.
    fn touch(&self, path: &Path) -> Result<()> {
        let mut last = self.last_touch.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = SystemTime::now().max(*last + Duration::from_micros(1));
        OpenOptions::new().write(true).open(path)?.set_modified(now)?;
        *last = now;
        Ok(())
    }

    fn blobs(&self) -> Result<Vec<StoredBlob>> {
        let mut blobs = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !is_hex_name(&name) {
                continue;
            }
            let metadata = match entry.metadata() {
                Ok(metadata) if metadata.is_file() => metadata,
                Ok(_) => continue,
                // Trimmed meanwhile.
                Err(error) if error.kind() == ErrorKind::NotFound => continue,
                Err(error) => return Err(error.into()),
            };
            blobs.push(StoredBlob {
                hash: BlobHash(format!("{PREFIX}{name}")),
                size: metadata.len(),
                used: metadata.modified()?,
            });
        }
        Ok(blobs)
    }

    fn blob_path(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join(hash.hex())
    }

    fn pending_path(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join("pending").join(hash.hex())
    }

    fn partial_path(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join("partial").join(hash.hex())
    }
}

#[derive(Debug)]
struct StoredBlob {
    hash: BlobHash,
    size: u64,
    used: SystemTime,
}

/// The size of the encrypted frame at the start of `bytes` (length, nonce, ciphertext,
/// tag), if it is whole.
fn frame_size(bytes: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let size = 4 + NONCE_BYTES + len + TAG_BYTES;
    (bytes.len() >= size).then_some(size)
}

/// The plaintext bytes of the whole frames of a download in progress, and where they end.
fn frames(bytes: &[u8]) -> (u64, usize) {
    let (mut plain, mut at) = (0, 0);
    while let Some(size) = frame_size(&bytes[at..]) {
        plain += (size - 4 - NONCE_BYTES - TAG_BYTES) as u64;
        at += size;
    }
    (plain, at)
}

fn is_hex_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

fn remove_if_there(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => Err(error.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn open(max_bytes: u64) -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path().join("device.db.blobs"), max_bytes).unwrap();
        (dir, blobs)
    }

    fn photo(seed: u8, size: usize) -> Vec<u8> {
        (0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn a_hash_is_sha256_in_lowercase_hex_and_only_that_parses() {
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(BlobHash::of(b"abc").as_str(), abc);
        assert_eq!(BlobHash::parse(&abc.to_uppercase().replace("SHA256:", "sha256:")).unwrap().as_str(), abc);
        for bad in
            ["", "sha256:", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "md5:ba78", &abc[..70]]
        {
            assert_eq!(BlobHash::parse(bad).unwrap_err().field, "blob", "{bad}");
        }
    }

    #[test]
    fn put_returns_the_content_hash_and_get_gives_the_bytes_back() {
        let (_dir, blobs) = open(1 << 20);
        let bytes = photo(1, 5000);
        let hash = blobs.put(&bytes).unwrap();
        assert_eq!(hash, BlobHash::of(&bytes));
        assert!(blobs.contains(&hash));
        assert_eq!(blobs.get(&hash).unwrap().unwrap(), bytes);
        assert_eq!(blobs.len_bytes().unwrap(), 5000);
        assert_eq!(blobs.pending_uploads().unwrap(), vec![hash.clone()]);
        blobs.mark_uploaded(&hash).unwrap();
        assert!(blobs.pending_uploads().unwrap().is_empty());
        assert_eq!(blobs.get(&BlobHash::of(b"absent")).unwrap(), None);
    }

    #[test]
    fn insert_refuses_bytes_that_do_not_match_their_hash() {
        let (_dir, blobs) = open(1 << 20);
        let hash = BlobHash::of(b"the real photo");
        let error = blobs.insert(&hash, b"something else").unwrap_err();
        assert!(matches!(&error, Error::BlobMismatch { hash: named } if *named == hash.to_string()), "{error}");
        assert!(!blobs.contains(&hash));
        blobs.insert(&hash, b"the real photo").unwrap();
        assert!(blobs.contains(&hash));
        assert!(!blobs.is_pending(&hash), "a blob from the server is not pending upload");
    }

    #[test]
    fn a_blob_over_the_server_limit_is_refused() {
        let (_dir, blobs) = open(u64::MAX);
        let error = blobs.put(&vec![0; MAX_BLOB_BYTES as usize + 1]).unwrap_err();
        assert!(matches!(error, Error::BlobTooLarge { size, limit: MAX_BLOB_BYTES } if size == MAX_BLOB_BYTES + 1));
        assert_eq!(blobs.len_bytes().unwrap(), 0);
    }

    #[test]
    fn trimming_keeps_pending_blobs_even_over_the_size() {
        let (_dir, blobs) = open(1000);
        let first = blobs.put(&photo(1, 800)).unwrap();
        let second = blobs.put(&photo(2, 800)).unwrap();
        assert!(blobs.contains(&first) && blobs.contains(&second));
        assert_eq!(blobs.len_bytes().unwrap(), 1600, "pending blobs are this device's only copy");
        blobs.mark_uploaded(&first).unwrap();
        assert_eq!(blobs.trim().unwrap(), 800);
        assert!(!blobs.contains(&first));
        assert!(blobs.contains(&second));
    }

    #[test]
    fn trimming_deletes_the_least_recently_used_first_and_spares_what_is_kept() {
        let (_dir, blobs) = open(u64::MAX);
        let [a, b, c, d] = [1, 2, 3, 4].map(|seed| {
            let hash = blobs.put(&photo(seed, 100)).unwrap();
            blobs.mark_uploaded(&hash).unwrap();
            hash
        });
        // Written a, b, c, d; then a and c are looked at again: b, d, a, c from oldest.
        blobs.get(&a).unwrap().unwrap();
        blobs.get(&c).unwrap().unwrap();
        assert_eq!(blobs.trim_to(300, &|_| false).unwrap(), 100);
        assert!(!blobs.contains(&b));
        assert!(blobs.contains(&d) && blobs.contains(&a) && blobs.contains(&c));
        // Keeping d: a goes next.
        assert_eq!(blobs.trim_to(200, &|hash| *hash == d).unwrap(), 100);
        assert!(!blobs.contains(&a));
        assert!(blobs.contains(&d) && blobs.contains(&c));
    }

    #[test]
    fn writes_trim_the_store_to_its_size() {
        let (_dir, blobs) = open(250);
        let old = BlobHash::of(&photo(1, 100));
        blobs.insert(&old, &photo(1, 100)).unwrap();
        let middle = BlobHash::of(&photo(2, 100));
        blobs.insert(&middle, &photo(2, 100)).unwrap();
        let new = BlobHash::of(&photo(3, 100));
        blobs.insert(&new, &photo(3, 100)).unwrap();
        assert!(!blobs.contains(&old));
        assert!(blobs.contains(&middle) && blobs.contains(&new));
        assert!(blobs.len_bytes().unwrap() <= 250);
    }

    #[test]
    fn the_order_of_use_survives_reopening_and_cut_off_writes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blobs");
        let (a, b) = {
            let blobs = BlobStore::open(&path, u64::MAX).unwrap();
            let a = blobs.put(&photo(1, 100)).unwrap();
            let b = blobs.put(&photo(2, 100)).unwrap();
            (a, b)
        };
        fs::write(path.join("tmp-cut-off"), b"half a photo").unwrap();
        let blobs = BlobStore::open(&path, u64::MAX).unwrap();
        assert!(!path.join("tmp-cut-off").exists());
        blobs.get(&a).unwrap().unwrap();
        for hash in [&a, &b] {
            blobs.mark_uploaded(hash).unwrap();
        }
        blobs.trim_to(100, &|_| false).unwrap();
        assert!(blobs.contains(&a) && !blobs.contains(&b));
    }

    #[test]
    fn the_directory_is_beside_the_store() {
        assert_eq!(
            BlobStore::dir_for(Path::new("/data/wangge/device.db")),
            PathBuf::from("/data/wangge/device.db.blobs")
        );
    }

    #[test]
    fn a_download_resumes_from_its_partial_file_and_is_checked_at_the_end() {
        let (_dir, blobs) = open(u64::MAX);
        let bytes = photo(9, 3000);
        let hash = BlobHash::of(&bytes);
        blobs.append_partial(&hash, &bytes[..1000]).unwrap();
        assert_eq!(blobs.partial_len(&hash).unwrap(), 1000);
        blobs.append_partial(&hash, &bytes[1000..]).unwrap();
        assert_eq!(blobs.finish_partial(&hash).unwrap(), bytes);
        assert_eq!(blobs.partial_len(&hash).unwrap(), 0);
        assert!(blobs.contains(&hash) && !blobs.is_pending(&hash));

        let other = BlobHash::of(b"other");
        blobs.append_partial(&other, b"not it").unwrap();
        assert!(matches!(blobs.finish_partial(&other), Err(Error::BlobMismatch { .. })));
        assert!(!blobs.contains(&other));
        assert_eq!(blobs.partial_len(&other).unwrap(), 0);
    }

    #[test]
    fn encrypted_blobs_and_downloads_hold_no_plaintext_and_resume_after_a_cut_off_frame() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open_encrypted(dir.path(), u64::MAX, [7; 32]).unwrap();
        let bytes = b"canary-plaintext ".repeat(200);
        let hash = BlobHash::of(&bytes);
        blobs.append_partial(&hash, &bytes[..1000]).unwrap();
        assert_eq!(blobs.partial_len(&hash).unwrap(), 1000);
        // A crash in the middle of the next frame: it is cut off and the download resumes.
        let partial = blobs.partial_path(&hash);
        let mut file = OpenOptions::new().append(true).open(&partial).unwrap();
        file.write_all(&[0x10, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(file);
        assert_eq!(blobs.partial_len(&hash).unwrap(), 1000);
        blobs.append_partial(&hash, &bytes[1000..]).unwrap();
        assert!(!fs::read(&partial).unwrap().windows(16).any(|window| window == b"canary-plaintext"));
        assert_eq!(blobs.finish_partial(&hash).unwrap(), bytes);
        let stored = fs::read(blobs.blob_path(&hash)).unwrap();
        assert!(!stored.windows(16).any(|window| window == b"canary-plaintext"));
        assert_eq!(blobs.get(&hash).unwrap().unwrap(), bytes);

        let wrong = BlobStore::open_encrypted(dir.path(), u64::MAX, [8; 32]).unwrap();
        assert!(matches!(wrong.get(&hash), Err(Error::BlobUnreadable { .. })));
        wrong.append_partial(&hash, b"x").unwrap();
        assert!(matches!(blobs.finish_partial(&hash), Err(Error::BlobUnreadable { .. })));
        assert_eq!(blobs.partial_len(&hash).unwrap(), 0);
    }
}
