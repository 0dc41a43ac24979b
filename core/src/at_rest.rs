//! Files at rest beside a keyed store: the one rule for sealing them, and how a file
//! holding plaintext is replaced.
//!
//! Every file a keyed store writes outside its SQLCipher database — blobs
//! ([`crate::blobs`]) and the exports of removed documents — is sealed with
//! ChaCha20-Poly1305 under the store's blob key (random, kept inside the encrypted
//! database): a 12-byte random nonce, then the ciphertext and its 16-byte tag. The
//! associated data names what the file is (a blob's hash, an export's document), so a
//! sealed file moved to another name does not open.
//!
//! Replacing plaintext (sealing a plain store's files, converting its database) writes
//! the new content to a temporary file beside the old one, syncs it, renames it over the
//! old one, syncs the directory, and only then overwrites the old file's content with
//! zeros through a handle kept open across the rename: a crash at any point leaves either
//! the old file or the new one at the path, and the plaintext does not stay behind in the
//! freed blocks. (On flash storage the controller may keep stale copies of any block;
//! only a store that is encrypted from the start avoids that.)

use std::fmt;
use std::fs::{self, File};
use std::io::{ErrorKind, Seek, SeekFrom, Write};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::{Error, Result};

pub(crate) const NONCE_BYTES: usize = 12;
pub(crate) const TAG_BYTES: usize = 16;

/// The AEAD of a keyed store's files. Never printed.
#[derive(Clone)]
pub(crate) struct FileCipher(ChaCha20Poly1305);

impl fmt::Debug for FileCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileCipher(..)")
    }
}

/// A sealed file that does not open: the wrong key, or altered bytes (the two cannot be
/// told apart). Callers turn it into their own error.
#[derive(Debug)]
pub(crate) struct Unsealable;

impl FileCipher {
    pub(crate) fn new(key: &[u8; 32]) -> FileCipher {
        FileCipher(ChaCha20Poly1305::new(&Key::from(*key)))
    }

    /// A random nonce, then the ciphertext and its tag; `aad` says what the file is.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|error| Error::Io(std::io::Error::other(error.to_string())))?;
        let sealed = self
            .0
            .encrypt(&Nonce::from(nonce), Payload { msg: plain, aad })
            .map_err(|_| Error::Io(std::io::Error::other("encryption failed")))?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plaintext of what [`FileCipher::seal`] wrote with the same key and `aad`.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Unsealable> {
        if sealed.len() < NONCE_BYTES + TAG_BYTES {
            return Err(Unsealable);
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let nonce = <[u8; NONCE_BYTES]>::try_from(nonce).map_err(|_| Unsealable)?;
        self.0.decrypt(&Nonce::from(nonce), Payload { msg: body, aad }).map_err(|_| Unsealable)
    }
}

/// Puts `bytes` at `path` through `temporary` (beside it: written, synced, renamed over
/// `path`), then zeroes what `path` held before (see the module's documentation).
pub(crate) fn replace_zeroing(path: &Path, temporary: &Path, bytes: &[u8]) -> Result<()> {
    let written = (|| {
        let mut file = File::create(temporary)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(temporary);
        return Err(error.into());
    }
    rename_zeroing(temporary, path)
}

/// Renames `temporary` (complete and synced) over `path`, syncs the directory, then
/// zeroes the file that was at `path`, through a handle opened before the rename.
pub(crate) fn rename_zeroing(temporary: &Path, path: &Path) -> Result<()> {
    let old = match File::options().write(true).open(path) {
        Ok(file) => Some(file),
        Err(error) if error.kind() == ErrorKind::NotFound => None,
        Err(error) => return Err(error.into()),
    };
    fs::rename(temporary, path)?;
    // The old content is zeroed only once the rename is durable: zeroed before, a power
    // cut that undid the rename would leave zeros at `path`. A failed directory sync leaves
    // it as it is, plaintext and all, and fails.
    sync_directory_of(path)?;
    if let Some(old) = old {
        zero(&old)?;
    }
    Ok(())
}

/// Zeroes a file's content, syncs it and removes it; a file already gone is fine.
pub(crate) fn zero_and_remove(path: &Path) -> Result<()> {
    match File::options().write(true).open(path) {
        Ok(file) => zero(&file)?,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error.into()),
    }
    match fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => Err(error.into()),
        _ => Ok(()),
    }
}

/// Overwrites an open file's content, in place, with zeros, and syncs it.
pub(crate) fn zero(mut file: &File) -> Result<()> {
    let len = file.metadata()?.len();
    let block = [0u8; 64 * 1024];
    file.seek(SeekFrom::Start(0))?;
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(())
}

/// Makes a rename (or a new file) at `path` durable by syncing its directory, and says
/// when that failed: until the directory is synced a power cut may undo the rename, so a
/// caller that promises durability (a photo's `put`) must fail too.
///
/// What is tolerated is what says "this file system cannot sync a directory", not "it
/// could not": `EINVAL` (Linux on CIFS and some FUSE file systems), `EBADF` (NetBSD and
/// others refuse a directory opened read-only), `EISDIR` (HP-UX), `ENOTSUP`/`EOPNOTSUPP`
/// and `ENOSYS` (FUSE file systems without `fsyncdir`). There the rename is all there is.
/// Everything else (`EIO`, `ENOSPC`, …) is returned. This is PostgreSQL's rule
/// (`fsync_fname_ext`: `EBADF` and `EINVAL` ignored for directories, anything else
/// reported) widened by coreutils' list (`EISDIR`) and the unsupported-operation codes.
/// SQLite's unix VFS ignores every error of its directory sync (`unixSync`: "many
/// systems … are unable to fsync a directory"); it can afford to, since a journal lost
/// with its directory entry only loses a rollback, while here the rename is the commit of
/// a photo that may be this device's only copy.
///
/// Where a directory cannot be opened as a file (Windows: `File::open` on a directory is
/// refused) nothing is synced; on unix a directory that does not open is an error.
pub(crate) fn sync_directory_of(path: &Path) -> std::io::Result<()> {
    sync_directory_with(path, File::sync_all)
}

/// [`sync_directory_of`] with `sync` standing for the directory's `fsync` (the blob
/// store's fault hook goes through here, so what it injects meets the same rule).
pub(crate) fn sync_directory_with(path: &Path, sync: impl FnOnce(&File) -> std::io::Result<()>) -> std::io::Result<()> {
    let Some(parent) = path.parent() else { return Ok(()) };
    let directory = match File::open(if parent.as_os_str().is_empty() { Path::new(".") } else { parent }) {
        Ok(directory) => directory,
        Err(_) if !cfg!(unix) => return Ok(()),
        Err(error) => return Err(error),
    };
    match sync(&directory) {
        Err(error) if directory_sync_unsupported(&error) => Ok(()),
        synced => synced,
    }
}

/// An error of a directory's `fsync` that means the file system does not do it (see
/// [`sync_directory_of`]).
fn directory_sync_unsupported(error: &std::io::Error) -> bool {
    // EBADF is 9 on every unix; std has no kind for it.
    const EBADF: i32 = 9;
    matches!(error.kind(), ErrorKind::InvalidInput | ErrorKind::IsADirectory | ErrorKind::Unsupported)
        || (cfg!(unix) && error.raw_os_error() == Some(EBADF))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_sealed_file_opens_only_with_its_key_and_its_name() {
        let cipher = FileCipher::new(&[7; 32]);
        let sealed = cipher.seal(b"name", b"the content").unwrap();
        assert_eq!(sealed.len(), NONCE_BYTES + b"the content".len() + TAG_BYTES);
        assert_eq!(cipher.open(b"name", &sealed).unwrap(), b"the content");
        assert!(cipher.open(b"other name", &sealed).is_err());
        assert!(FileCipher::new(&[8; 32]).open(b"name", &sealed).is_err());
        let mut altered = sealed.clone();
        altered[NONCE_BYTES + 2] ^= 1;
        assert!(cipher.open(b"name", &altered).is_err());
        assert!(cipher.open(b"name", &sealed[..NONCE_BYTES + TAG_BYTES - 1]).is_err());
    }

    #[test]
    fn replacing_a_file_zeroes_the_old_content_behind_the_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        fs::write(&path, b"plaintext canary").unwrap();
        // A second handle on the old file sees what became of its blocks.
        let old = File::open(&path).unwrap();
        replace_zeroing(&path, &dir.path().join("file.tmp"), b"sealed").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"sealed");
        assert!(!dir.path().join("file.tmp").exists());
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut &old, &mut content).unwrap();
        assert_eq!(content, vec![0; b"plaintext canary".len()]);

        zero_and_remove(&path).unwrap();
        assert!(!path.exists());
        zero_and_remove(&path).unwrap();
    }

    // Linux's errno numbers.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_directory_sync_that_is_unsupported_is_tolerated_and_one_that_fails_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        sync_directory_of(&path).unwrap();
        #[track_caller]
        fn check(errno: i32, reported: bool) {
            let dir = tempfile::tempdir().unwrap();
            let result =
                sync_directory_with(&dir.path().join("file"), |_| Err(std::io::Error::from_raw_os_error(errno)));
            match result {
                Err(error) => assert!(reported, "errno {errno} reported: {error}"),
                Ok(()) => assert!(!reported, "errno {errno} tolerated"),
            }
        }
        // EINVAL, EBADF, EISDIR, ENOSYS, EOPNOTSUPP (Linux): the file system does not do it.
        for errno in [22, 9, 21, 38, 95] {
            check(errno, false);
        }
        // EIO, ENOSPC, EDQUOT, EROFS: it could not.
        for errno in [5, 28, 122, 30] {
            check(errno, true);
        }
    }
}
