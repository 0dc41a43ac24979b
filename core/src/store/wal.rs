//! What a store's WAL file says about page 1, read with plain file I/O before SQLite opens
//! the store.
//!
//! `Store::open` reads the database file's 100-byte header to decide what the file is
//! (`schema::check_existing`). After a power cut in the middle of a checkpoint, that header
//! can be garbage — the sector of page 1 being written when the power went — while the WAL
//! still holds page 1 whole: the checkpoint was not finished, so SQLite takes page 1 from
//! the WAL and the store is intact (found by `core/tests/power_loss.rs`). Such a store
//! must open, not be refused as encrypted with another key, nor moved aside as unreadable.
//!
//! WAL format (<https://sqlite.org/fileformat2.html#walformat>): a 32-byte header (magic
//! `0x377f0682` or `0x377f0683`, version, page size, checkpoint sequence, two salts, two
//! checksums), then frames: a 24-byte header (page number, size after commit, the two
//! salts of the WAL generation it belongs to, two checksums) and the page.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::schema::{self, Header, SCHEMA_VERSION};
use crate::{Error, Result};

const HEADER_BYTES: u64 = 32;
const FRAME_HEADER_BYTES: u64 = 24;
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Whether the store file's own header is damaged but its WAL holds a plain page 1 that
/// this build reads: then SQLite, not the header, decides what the file is. A newer
/// schema in that page 1 is [`Error::IncompatibleVersion`], as in a header.
pub(crate) fn page_one_only_in_wal(store_path: &Path) -> Result<bool> {
    if !matches!(schema::read_header(store_path)?, Header::NotPlain { .. }) {
        return Ok(false);
    }
    match plain_page_one_version(&wal_path(store_path)) {
        Ok(Some(version)) if version > SCHEMA_VERSION => {
            Err(Error::IncompatibleVersion { found: version, supported: SCHEMA_VERSION })
        }
        Ok(Some(_)) => Ok(true),
        Ok(None) => Ok(false),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error.into()),
    }
}

fn wal_path(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_os_string();
    name.push("-wal");
    PathBuf::from(name)
}

/// The `user_version` of the last plain page 1 in the WAL's current generation (frames
/// whose salts match the WAL header's), if there is one.
fn plain_page_one_version(wal: &Path) -> std::io::Result<Option<u32>> {
    let mut file = File::open(wal)?;
    let len = file.metadata()?.len();
    let mut header = [0u8; HEADER_BYTES as usize];
    if len < HEADER_BYTES {
        return Ok(None);
    }
    file.read_exact(&mut header)?;
    let magic = be32(&header[0..4]);
    let page_size = u64::from(be32(&header[8..12]));
    // A page size of 65536 is written as 1.
    let page_size = if page_size == 1 { 65_536 } else { page_size };
    if magic & !1 != 0x377f_0682 || !page_size.is_power_of_two() || !(512..=65_536).contains(&page_size) {
        return Ok(None);
    }
    let salts = &header[16..24];
    let mut version = None;
    let mut at = HEADER_BYTES;
    let mut frame = [0u8; FRAME_HEADER_BYTES as usize + 100];
    while at + FRAME_HEADER_BYTES + page_size <= len {
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut frame)?;
        if &frame[8..16] != salts {
            break;
        }
        let page = &frame[FRAME_HEADER_BYTES as usize..];
        if be32(&frame[0..4]) == 1 && page.starts_with(MAGIC) {
            version = Some(be32(&page[60..64]));
        }
        at += FRAME_HEADER_BYTES + page_size;
    }
    Ok(version)
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}
