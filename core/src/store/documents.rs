//! Automerge documents in SQLite: a saved snapshot plus incremental chunks, and the
//! heads and acknowledgement bookkeeping beside them.

use automerge::{ActorId, AutoCommit, ChangeHash};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::crdt::{self, DocId};
use crate::{Error, Result};

/// Chunks beyond this many are folded into the snapshot (amortised: one save per that many captures).
pub(crate) const MAX_CHUNKS: i64 = 256;

pub(crate) fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|hash| hash.0).collect()
}

pub(crate) fn decode_heads(bytes: &[u8]) -> Result<Vec<ChangeHash>> {
    bytes
        .chunks(32)
        .map(|chunk| {
            ChangeHash::try_from(chunk)
                .map_err(|_| Error::document("bookkeeping", "stored heads are not 32-byte hashes"))
        })
        .collect()
}

/// Stores a new document (its genesis, which every replica and the server share, so it
/// counts as acknowledged).
pub(crate) fn insert(tx: &Transaction<'_>, id: &DocId, doc: &mut AutoCommit) -> Result<()> {
    let heads = encode_heads(&doc.get_heads());
    tx.execute(
        "INSERT INTO documents (doc_id, kind, grid_code, snapshot, heads, acked_heads) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![id.to_string(), id.kind.code(), id.grid, doc.save(), heads],
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
        .prepare_cached("SELECT snapshot FROM documents WHERE doc_id = ?1")?
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

/// Records new changes of a document: appends them as a chunk, moves its heads and, for
/// local changes, counts them as awaiting acknowledgement. Folds chunks into the snapshot
/// when there are many.
pub(crate) fn append(
    tx: &Transaction<'_>,
    id: &DocId,
    doc: &mut AutoCommit,
    chunk: &[u8],
    n_local_changes: i64,
) -> Result<()> {
    let key = id.to_string();
    let n_chunks: i64 = tx
        .prepare_cached(
            "UPDATE documents SET heads = ?2, n_unacked = n_unacked + ?3, n_chunks = n_chunks + 1
             WHERE doc_id = ?1 RETURNING n_chunks",
        )?
        .query_row(params![key, encode_heads(&doc.get_heads()), n_local_changes], |row| row.get(0))?;
    if n_chunks > MAX_CHUNKS {
        tx.prepare_cached("DELETE FROM document_chunks WHERE doc_id = ?1")?.execute([&key])?;
        tx.prepare_cached("UPDATE documents SET snapshot = ?2, n_chunks = 0 WHERE doc_id = ?1")?
            .execute(params![key, doc.save()])?;
    } else {
        tx.prepare_cached("INSERT INTO document_chunks (doc_id, seq, bytes) VALUES (?1, ?2, ?3)")?
            .execute(params![key, n_chunks, chunk])?;
    }
    Ok(())
}

pub(crate) fn grid_doc_ids(conn: &Connection) -> Result<Vec<DocId>> {
    let ids: Vec<String> = conn
        .prepare("SELECT doc_id FROM documents ORDER BY doc_id")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids.iter().filter_map(|id| DocId::parse(id)).collect())
}
