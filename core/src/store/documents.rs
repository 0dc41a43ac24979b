//! Automerge documents in SQLite: a saved snapshot plus incremental chunks, with the
//! acknowledgement bookkeeping beside them.
//!
//! A capture appends one chunk row and writes nothing else here: the chunk carries its
//! own count of unacknowledged local changes, and the heads are read from the document.
//! Every [`MAX_CHUNKS`] chunks are folded into the snapshot.

use automerge::{ActorId, AutoCommit, ChangeHash};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::crdt::{self, DocId};
use crate::{Error, Result};

/// Chunks beyond this many are folded into the snapshot (one save per that many captures).
pub(crate) const MAX_CHUNKS: i64 = 1024;

/// Heads as stored (`documents.acked_heads`): sorted, 32 bytes each.
pub(crate) fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|hash| hash.0).collect()
}

/// Stored heads back (sorted, as [`encode_heads`] wrote them).
pub(crate) fn decode_heads(bytes: &[u8]) -> Vec<ChangeHash> {
    bytes.chunks(32).filter_map(|hash| ChangeHash::try_from(hash).ok()).collect()
}

/// Stores a new document from its genesis, which every replica and the server share, so
/// it counts as acknowledged. `grid` is the grid it belongs to (an incident's grid).
pub(crate) fn insert(tx: &Transaction<'_>, id: &DocId, grid: &str, doc: &mut AutoCommit) -> Result<()> {
    let heads = encode_heads(&doc.get_heads());
    tx.execute(
        "INSERT INTO documents (doc_id, kind, grid_code, acked_heads) VALUES (?1, ?2, ?3, ?4)",
        params![id.to_string(), id.kind.code(), grid, heads],
    )?;
    tx.execute(
        "INSERT INTO document_snapshots (doc_id, snapshot) VALUES (?1, ?2)",
        params![id.to_string(), doc.save()],
    )?;
    Ok(())
}

pub(crate) fn exists(conn: &Connection, id: &DocId) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM documents WHERE doc_id = ?1")?
        .query_row([id.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Loads a document from its snapshot and chunks, acting as `actor` from now on.
pub(crate) fn load(conn: &Connection, id: &DocId, actor: &ActorId) -> Result<Option<AutoCommit>> {
    let key = id.to_string();
    let snapshot: Option<Vec<u8>> = conn
        .prepare_cached("SELECT snapshot FROM document_snapshots WHERE doc_id = ?1")?
        .query_row([&key], |row| row.get(0))
        .optional()?;
    let Some(snapshot) = snapshot else { return Ok(None) };
    let mut doc = AutoCommit::load(&snapshot).map_err(|error| Error::document(id, error))?;
    let mut chunks = conn.prepare_cached("SELECT bytes FROM document_chunks WHERE doc_id = ?1 ORDER BY seq")?;
    let mut rows = chunks.query([&key])?;
    while let Some(row) = rows.next()? {
        let bytes: Vec<u8> = row.get(0)?;
        doc.load_incremental(&bytes).map_err(|error| Error::document(id, error))?;
    }
    crdt::check_layout(&doc, id)?;
    Ok(Some(doc.with_actor(actor.clone())))
}

/// How many chunks a document has.
pub(crate) fn n_chunks(conn: &Connection, id: &DocId) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM document_chunks WHERE doc_id = ?1")?
        .query_row([id.to_string()], |row| row.get(0))?)
}

/// Records new changes of a document as a chunk after its `n_chunks` others; `n_unacked`
/// of them are local changes awaiting the server's acknowledgement. Folds the chunks into
/// the snapshot when there are many. Returns the new number of chunks.
pub(crate) fn append(
    tx: &Transaction<'_>,
    id: &DocId,
    doc: &mut AutoCommit,
    chunk: &[u8],
    n_unacked: i64,
    n_chunks: i64,
) -> Result<i64> {
    let key = id.to_string();
    // A change still waiting for its dependencies is not part of what `save()` writes:
    // its chunk stays until it has been applied.
    if n_chunks < MAX_CHUNKS || !doc.get_missing_deps(&[]).is_empty() {
        tx.prepare_cached("INSERT INTO document_chunks (doc_id, bytes, n_unacked) VALUES (?1, ?2, ?3)")?
            .execute(params![key, chunk, n_unacked])?;
        return Ok(n_chunks + 1);
    }
    tx.prepare_cached(
        "UPDATE documents SET n_unacked_folded = n_unacked_folded + ?2
            + (SELECT coalesce(sum(n_unacked), 0) FROM document_chunks WHERE doc_id = ?1)
         WHERE doc_id = ?1",
    )?
    .execute(params![key, n_unacked])?;
    tx.prepare_cached("DELETE FROM document_chunks WHERE doc_id = ?1")?.execute([&key])?;
    tx.prepare_cached("UPDATE document_snapshots SET snapshot = ?2 WHERE doc_id = ?1")?
        .execute(params![key, doc.save()])?;
    Ok(0)
}

/// The changes of `changes` that `doc` does not have yet, concatenated as one chunk, and
/// how many there are. Every one of them is stored, including a change whose dependencies
/// have not arrived: automerge holds it back in memory until they do, and a restart before
/// then must not lose it.
pub(crate) fn new_changes_chunk(doc: &mut AutoCommit, changes: &[automerge::Change]) -> (Vec<u8>, usize) {
    let mut chunk = Vec::new();
    let mut n_new = 0;
    for change in changes {
        if doc.get_change_meta_by_hash(&change.hash()).is_none() {
            chunk.extend_from_slice(change.raw_bytes());
            n_new += 1;
        }
    }
    (chunk, n_new)
}

/// Local changes not yet acknowledged by the server, over all documents, with the
/// changes pending captures will become.
pub(crate) fn n_unacked(conn: &Connection) -> Result<u64> {
    // One statement, one snapshot: a flush moving captures into chunks is seen whole or not.
    let n: i64 = conn.query_row(
        "SELECT (SELECT coalesce(sum(n_unacked_folded), 0) FROM documents)
              + (SELECT coalesce(sum(n_unacked), 0) FROM document_chunks)
              + (SELECT count(*) FROM pending_captures)
              + (SELECT count(*) FROM failed_captures)",
        [],
        |row| row.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn grid_doc_ids(conn: &Connection) -> Result<Vec<DocId>> {
    let ids: Vec<String> = conn
        .prepare("SELECT doc_id FROM documents ORDER BY doc_id")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids.iter().filter_map(|id| DocId::parse(id)).collect())
}
