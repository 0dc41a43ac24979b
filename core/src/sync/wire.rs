//! The messages of sync protocol v1, as they travel: CBOR (RFC 8949), zstd-compressed.
//!
//! `docs/sync-protocol.md` is the specification; this module is its Rust form, shared by
//! the device's client and the server. Decoding never trusts a length: a body is refused
//! (not truncated) past [`MAX_BODY_BYTES`] compressed or [`MAX_DECODED_BYTES`] decoded.

use std::io::Read;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The protocol version a request names in its `Wangge-Protocol` header.
pub const PROTOCOL_VERSION: u32 = 1;
/// The header naming the protocol version.
pub const PROTOCOL_HEADER: &str = "wangge-protocol";
/// The header of every answer of the server that carries its time: milliseconds since
/// 1970-01-01 UTC, in decimal. Devices correct their clocks by it (`crate::clock`): deadlines
/// are counted by the server's time, whatever a device's clock says.
pub const SERVER_TIME_HEADER: &str = "wangge-server-time";
/// The media type of every body.
pub const CONTENT_TYPE: &str = "application/cbor";
/// Largest compressed body a server accepts (413 beyond).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Largest body after decompression (400 `malformed` beyond: a compression bomb).
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// The pull budget a device asks for when it does not say: 2 MiB of uncompressed
/// snapshots and changes, about 300 KB on the wire, which holds a whole grid's first sync
/// (500 households, 300 incidents) in one page.
pub const DEFAULT_PULL_BUDGET: u32 = 2 * 1024 * 1024;
/// Bytes of changes (before compression) a device pushes in one request; the rest wait for
/// the next round, so a request stays under `MAX_BODY_BYTES`.
pub const MAX_PUSH_BYTES: usize = 4 * 1024 * 1024;
/// The largest pull budget the server grants: a larger request gets this much, so a page
/// stays well under `MAX_BODY_BYTES` (snapshots go uncompressed into a page, and the
/// page's compression takes them to well under half).
pub const MAX_PULL_BUDGET: u32 = 4 * 1024 * 1024;
/// Largest blob (a photo, a track) the server stores: 20 MiB (413 `too_large` beyond).
pub const MAX_BLOB_BYTES: u64 = 20 * 1024 * 1024;
/// Largest chunk of a blob in one upload or download: 1 MiB (413 `too_large` beyond; a
/// download asking for more gets this much).
pub const MAX_BLOB_CHUNK_BYTES: usize = 1024 * 1024;

/// `POST /v1/enroll`: a one-time enrollment code for a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The code the operator issued (the QR payload).
    pub code: String,
    /// The device's automerge actor id, 16 bytes: every change it makes carries it.
    #[serde(with = "serde_bytes")]
    pub actor: Vec<u8>,
    pub device_name: String,
    pub app_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The bearer token for every later request. Shown once; the server keeps its hash.
    pub token: String,
    pub device_id: String,
    pub worker: WorkerInfo,
}

/// Who the device works for, as the server has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub person: String,
    /// A role code (`incident::roles::Role::code`).
    pub role: String,
    pub department: Option<String>,
    /// The grids the worker is assigned to, with what the device needs to hold them.
    pub grids: Vec<GridInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridInfo {
    pub code: String,
    pub name: String,
    /// A grid kind code (`model::GridKind::code`).
    pub kind: String,
    /// Whether this device receives the grid's sensitive document.
    pub sensitive: bool,
}

/// `POST /v1/sync`: what the device has not had acknowledged, and where its pull stands.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The server sequence number up to which the device has received its scopes' changes.
    pub cursor: u64,
    /// Local changes, by document, that the server has not acknowledged.
    pub pushes: Vec<DocChanges>,
    /// How many bytes of documents the response may carry (one page).
    pub pull_budget: u32,
    /// Documents received as snapshots, and removals carried out, since the last request
    /// that reached the server: until a device confirms them, the server sends them again
    /// (a response can be lost on the way).
    #[serde(default)]
    pub received: Vec<String>,
    /// Documents the device set aside after a refused push: the server sends them anew,
    /// whole.
    #[serde(default)]
    pub reset: Vec<String>,
    /// What the device says about itself, for the operator's list of devices.
    #[serde(default)]
    pub status: Option<DeviceStatus>,
    /// `true`: the device takes a newer generation of a grid document (the server compacted
    /// it) as a snapshot that replaces its copy, replaying its unsynced edits onto it
    /// (protocol §4.7). Absent or `false` (clients before compaction): the server has the
    /// device remove its copy (exporting its unsynced edits) and then sends it anew.
    #[serde(default)]
    pub generations: Option<bool>,
}

/// A device's report of itself, sent with each sync.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// The wangge-core version it runs.
    pub version: String,
    /// Its local edits not yet acknowledged when it sent the request.
    pub pending: u64,
    /// Whether the request pushes all of them (then none wait once it is acknowledged).
    pub all_pushed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocChanges {
    /// A document id: `register/<grid>`, `sensitive/<grid>`, `incident/<id>`.
    pub doc: String,
    /// Encoded automerge changes, in an order that respects their dependencies.
    pub changes: Vec<serde_bytes::ByteBuf>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SyncResponse {
    /// For each pushed document: stored. The device may count everything it pushed as acknowledged.
    pub acks: Vec<String>,
    /// Documents and changes the device lacks, in server order.
    pub pulls: Vec<DocPull>,
    /// Where the next request's pull continues.
    pub cursor: u64,
    /// Another page waits: sync again (without waiting) to get it.
    pub more: bool,
    /// Documents the device may no longer hold (its scopes changed): it exports its
    /// unsynced edits of them to a file (the server no longer accepts them), purges them,
    /// and confirms in `received`.
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocPull {
    pub doc: String,
    /// The whole document, saved, when it is new to the device.
    pub snapshot: Option<serde_bytes::ByteBuf>,
    /// Changes after what the device has (or after the snapshot).
    pub changes: Vec<serde_bytes::ByteBuf>,
}

/// `POST /v1/blobs/upload`: the next chunk of a blob (protocol §9). Chunks go in order:
/// `offset` is where the server's upload stands (`BlobStatus::received`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobUploadRequest {
    /// The blob's name: `sha256:` and the 64 hex digits of the SHA-256 of all its bytes.
    pub hash: String,
    /// The whole blob's size in bytes (at most [`MAX_BLOB_BYTES`]).
    pub size: u64,
    /// Where this chunk starts in the blob.
    pub offset: u64,
    /// At most [`MAX_BLOB_CHUNK_BYTES`].
    pub chunk: serde_bytes::ByteBuf,
}

/// `POST /v1/blobs/status`: where this device's upload of a blob stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobStatusRequest {
    pub hash: String,
}

/// The answer to an upload or a status request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BlobStatus {
    /// Bytes the server holds of this device's upload: the next chunk starts here. The
    /// whole size once complete.
    pub received: u64,
    /// The server has the blob whole and checked (from this device or another).
    pub complete: bool,
}

/// `POST /v1/blobs/download`: a chunk of a blob that a document the device may read
/// refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobDownloadRequest {
    pub hash: String,
    /// Where the chunk starts.
    pub offset: u64,
    /// At most this many bytes; 0, or more than [`MAX_BLOB_CHUNK_BYTES`], means that much.
    pub max: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobChunk {
    /// The bytes from the requested offset; empty at the end.
    pub chunk: serde_bytes::ByteBuf,
    /// The blob's whole size.
    pub total: u64,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code: `malformed`, `unsupported_version`, `unauthorized`, `revoked`,
    /// `forbidden`, `unknown_code`, `not_found`, `conflict`, `too_large`, `internal`.
    pub code: String,
    /// For people; never holds personal data.
    pub message: String,
    /// The document a refused push was refused for: the device sets it aside (exports its
    /// unsynced changes, purges it, asks for it anew in `reset`) instead of being stuck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("body is {found} bytes, over the limit of {limit}")]
    TooLarge { found: usize, limit: usize },
    #[error("body is not a valid zstd frame: {0}")]
    Compression(String),
    #[error("body is not the expected CBOR message: {0}")]
    Cbor(String),
}

/// The zstd level of bodies from [`SMALL_BODY_BYTES`] up. Level 9 finds the structure
/// automerge documents repeat across a first sync's page (actor ids, keys, 300
/// near-identical incident geneses) for about 20 ms per MB; level 3 leaves 8% more bytes,
/// level 19 saves 10% at 15× the time.
pub const BODY_COMPRESSION_LEVEL: i32 = 9;

/// Below this many bytes of CBOR (a steady sync's few changes) a body is compressed at
/// level 3: the same bytes within a few, where level 9 cost a server under load 6–8% of
/// its CPU on bodies of a few hundred bytes.
pub const SMALL_BODY_BYTES: usize = 16 * 1024;

/// CBOR, then zstd (one frame, with its content size).
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut cbor = Vec::new();
    // Writing CBOR into a Vec cannot fail for these plain structs.
    let _ = ciborium::into_writer(message, &mut cbor);
    let level = if cbor.len() < SMALL_BODY_BYTES { 3 } else { BODY_COMPRESSION_LEVEL };
    // Compressing a Vec in memory fails only on allocation failure, which aborts anyway.
    zstd::bulk::compress(&cbor, level).unwrap_or_default()
}

/// The reverse of [`encode`], refusing oversized or decompression-bomb bodies.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WireError::TooLarge { found: body.len(), limit: MAX_BODY_BYTES });
    }
    let mut cbor = Vec::new();
    let limit = MAX_DECODED_BYTES as u64 + 1;
    zstd::stream::read::Decoder::with_buffer(body)
        .map_err(|error| WireError::Compression(error.to_string()))?
        .single_frame()
        .take(limit)
        .read_to_end(&mut cbor)
        .map_err(|error| WireError::Compression(error.to_string()))?;
    if cbor.len() > MAX_DECODED_BYTES {
        return Err(WireError::TooLarge { found: cbor.len(), limit: MAX_DECODED_BYTES });
    }
    ciborium::from_reader(cbor.as_slice()).map_err(|error| WireError::Cbor(error.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn messages_round_trip() {
        let request = SyncRequest {
            cursor: 42,
            pushes: vec![DocChanges { doc: "register/440703001001001".into(), changes: vec![vec![1u8, 2, 3].into()] }],
            pull_budget: DEFAULT_PULL_BUDGET,
            received: vec!["sensitive/440703001001001".into()],
            reset: vec!["incident/01934b1e-0000-7000-8000-000000000001".into()],
            status: Some(DeviceStatus { version: "0.1.0".into(), pending: 3, all_pushed: true }),
            generations: Some(true),
        };
        assert_eq!(decode::<SyncRequest>(&encode(&request)).unwrap(), request);
        let upload = BlobUploadRequest {
            hash: format!("sha256:{}", "ab".repeat(32)),
            size: 3,
            offset: 1,
            chunk: vec![2u8, 3].into(),
        };
        assert_eq!(decode::<BlobUploadRequest>(&encode(&upload)).unwrap(), upload);
        let chunk = BlobChunk { chunk: vec![9u8; 10].into(), total: 10 };
        assert_eq!(decode::<BlobChunk>(&encode(&chunk)).unwrap(), chunk);
    }

    #[test]
    fn garbage_truncation_and_bombs_are_refused() {
        assert!(matches!(decode::<SyncRequest>(b"not zstd"), Err(WireError::Compression(_))));
        let body = encode(&SyncRequest::default());
        assert!(decode::<SyncRequest>(&body[..body.len() / 2]).is_err());
        let wrong = encode(&ErrorBody { code: "x".into(), message: "y".into(), doc: None });
        assert!(matches!(decode::<SyncRequest>(&wrong), Err(WireError::Cbor(_))));
        // 100 MB of zeros compress to a few KB: refused after decompressing 64 MB, not stored.
        let bomb = zstd::bulk::compress(&vec![0u8; 100 * 1024 * 1024], 3).unwrap();
        assert!(matches!(decode::<SyncRequest>(&bomb), Err(WireError::TooLarge { .. })));
    }
}
