//! The device's side of sync as state transitions, with no I/O (automerge's
//! `generate_sync_message` / `receive_sync_message` are the model):
//!
//! ```text
//! let round = store.begin_sync(budget)?;          // state in, request out
//! let response = transport.post(&round.request); // (the transport's business)
//! let outcome = store.finish_sync(round, response)?; // response in, state out
//! ```
//!
//! A round pushes every local change the server has not acknowledged (changes after the
//! document's acknowledged heads) and asks for the scopes' changes after the cursor.
//! Acknowledgement covers what the round pushed, no more: captures made while it was in
//! flight stay pending. Pulled changes are applied before the cursor moves, so a round
//! cut off half-way is simply repeated (applying known changes is harmless).

use automerge::ChangeHash;
use rusqlite::OptionalExtension;

use super::wire::{DeviceStatus, DocChanges, EnrollResponse, MAX_PUSH_BYTES, SyncRequest, SyncResponse};
use crate::crdt::{DocId, DocKind, generation};
use crate::incident::Actor;
use crate::incident::roles::{DepartmentCode, Role};
use crate::model::{Grid, GridCode, GridKind};
use crate::store::{Store, documents};
use crate::{Error, Result};

/// One round in flight: the request, and what it covers.
#[derive(Debug, Clone)]
pub struct SyncRound {
    pub request: SyncRequest,
    /// Each pushed document's heads when the round began, and its last chunk then:
    /// acknowledgement covers those changes and stops at that chunk.
    pushed: Vec<(DocId, Vec<ChangeHash>, i64)>,
    /// Documents with changes left for the next round (over the push budget).
    more_to_push: bool,
}

/// What a round did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncOutcome {
    pub n_pushed_docs: usize,
    pub n_pushed_changes: usize,
    pub n_pulled_docs: usize,
    pub n_pulled_bytes: usize,
    /// Documents the device no longer may hold, purged (their unsynced edits exported).
    pub n_purged_docs: usize,
    /// Another page waits, or changes left over the push budget: sync again at once.
    pub more: bool,
    /// Documents whose content changed here: pulled, or purged (screens showing them refresh).
    pub changed_docs: Vec<String>,
}

impl Store {
    /// Records an enrollment: the token, who the device works for, and the grids it holds.
    pub fn apply_enrollment(&self, enrollment: &EnrollResponse) -> Result<()> {
        for grid in &enrollment.worker.grids {
            let code = GridCode::parse(&grid.code, self.code_format())?;
            let kind = GridKind::from_code(&grid.kind).unwrap_or(GridKind::Community);
            self.add_grid(&Grid::new(code, &grid.name, kind)?, grid.sensitive)?;
        }
        let worker =
            serde_json::to_string(&(&enrollment.worker.person, &enrollment.worker.role, &enrollment.worker.department))
                .map_err(|error| Error::document("enrollment", error))?;
        self.set_meta(&[
            ("sync_token", enrollment.token.as_str()),
            ("sync_worker", worker.as_str()),
            ("device_id", enrollment.device_id.as_str()),
        ])
    }

    /// The bearer token from enrollment, if the device is enrolled.
    pub fn sync_token(&self) -> Result<Option<String>> {
        self.meta("sync_token")
    }

    /// Who the device works for, as the server said at enrollment; `None` before it (or
    /// when the server named a role this version does not know).
    pub fn enrolled_worker(&self) -> Result<Option<Actor>> {
        let Some(json) = self.meta("sync_worker")? else { return Ok(None) };
        let (person, role, department): (String, String, Option<String>) =
            serde_json::from_str(&json).map_err(|error| Error::document("enrollment", error))?;
        let Some(role) = Role::from_code(&role) else { return Ok(None) };
        let department = department.map(|code| DepartmentCode::parse(&code)).transpose()?;
        Ok(Some(Actor { person, role, department }))
    }

    /// The id the server gave this device at enrollment (what an operator revokes).
    pub fn device_id(&self) -> Result<Option<String>> {
        self.meta("device_id")
    }

    /// Remembers the sync server's address (the host app's setting, or the enrollment QR).
    pub fn set_sync_server(&self, url: &str) -> Result<()> {
        self.set_meta(&[("sync_server", url)])
    }

    /// The sync server's address, if one was set.
    pub fn sync_server(&self) -> Result<Option<String>> {
        self.meta("sync_server")
    }

    /// Starts a round: flushes pending captures, then gathers each document's changes
    /// after its acknowledged heads, and the pull cursor.
    pub fn begin_sync(&self, pull_budget: u32) -> Result<SyncRound> {
        self.begin_sync_with(pull_budget, MAX_PUSH_BYTES)
    }

    /// [`Store::begin_sync`] with a push budget: documents whose changes would take the
    /// request over it wait for the next round (the outcome says `more`); the first
    /// document goes whatever its size.
    pub fn begin_sync_with(&self, pull_budget: u32, push_budget: usize) -> Result<SyncRound> {
        self.flush()?;
        let cursor = self.meta("sync_cursor")?.and_then(|cursor| cursor.parse().ok()).unwrap_or(0);
        let acked = self.with_reader(|conn| {
            let mut statement = conn.prepare("SELECT doc_id, acked_heads FROM documents ORDER BY doc_id")?;
            statement
                .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })?;
        let mut pushes = Vec::new();
        let mut pushed = Vec::new();
        let mut push_bytes = 0;
        let mut more_to_push = false;
        for (doc, acked_heads) in acked {
            let Some(doc_id) = DocId::parse(&doc) else { continue };
            let (heads, last_chunk) = self.sync_point(&doc_id)?;
            let acked_heads = documents::decode_heads(&acked_heads);
            let mut sorted = heads.clone();
            sorted.sort();
            if sorted == acked_heads {
                continue;
            }
            let changes = self.own_changes_since(&doc_id, &acked_heads)?;
            if changes.is_empty() {
                continue;
            }
            let n_bytes: usize = changes.iter().map(Vec::len).sum();
            if !pushes.is_empty() && push_bytes + n_bytes > push_budget {
                more_to_push = true;
                continue;
            }
            push_bytes += n_bytes;
            pushes.push(DocChanges { doc: doc.clone(), changes: changes.into_iter().map(Into::into).collect() });
            pushed.push((doc_id, heads, last_chunk));
        }
        let received = self.meta_list("sync_received")?;
        let reset = self.meta_list("sync_reset")?;
        let status = DeviceStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pending: self.pending_changes()?,
            all_pushed: !more_to_push,
        };
        let request =
            SyncRequest { cursor, pushes, pull_budget, received, reset, status: Some(status), generations: Some(true) };
        Ok(SyncRound { request, pushed, more_to_push })
    }

    /// Ends a round with the server's response: acknowledgements, then pulled documents,
    /// then the cursor.
    pub fn finish_sync(&self, round: SyncRound, response: SyncResponse) -> Result<SyncOutcome> {
        let mut outcome = SyncOutcome { more: response.more || round.more_to_push, ..SyncOutcome::default() };
        // To confirm in the next request: snapshots received and removals carried out here.
        let mut received = Vec::new();
        for doc in &response.removed {
            if let Some(doc_id) = DocId::parse(doc) {
                self.purge_document(&doc_id)?;
                outcome.n_purged_docs += 1;
                outcome.changed_docs.push(doc.clone());
            }
            received.push(doc.clone());
        }
        for (doc_id, heads, last_chunk) in &round.pushed {
            let key = doc_id.to_string();
            if !response.acks.contains(&key) {
                continue;
            }
            let n_changes =
                round.request.pushes.iter().find(|push| push.doc == key).map_or(0, |push| push.changes.len());
            self.acknowledge(doc_id, heads, *last_chunk)?;
            outcome.n_pushed_docs += 1;
            outcome.n_pushed_changes += n_changes;
        }
        let mut failures = Vec::new();
        let mut set_aside_now = Vec::new();
        // A grid's register before its sensitive document: sensitive fields applied before
        // their record (the server lists documents in log order, so an earlier sensitive
        // edit puts the sensitive document first) look orphaned, and applying them deletes
        // them: a new resident's phone was lost on every device that way.
        let mut pulls = response.pulls;
        pulls.sort_by_key(|pull| DocId::parse(&pull.doc).is_some_and(|doc_id| doc_id.kind == DocKind::Sensitive));
        for pull in pulls {
            let is_snapshot = pull.snapshot.is_some();
            match self.apply_pull(pull.doc.as_str(), pull.snapshot, pull.changes) {
                Ok((n_bytes, replayed)) => {
                    // Edits replayed onto a new generation are pushed at once.
                    outcome.more |= replayed;
                    outcome.n_pulled_bytes += n_bytes;
                    outcome.n_pulled_docs += 1;
                    outcome.changed_docs.push(pull.doc.clone());
                    if is_snapshot {
                        received.push(pull.doc.clone());
                    }
                }
                // One document this device cannot take (a newer format, a grid code of
                // another format) must not block the others: a snapshot stays unconfirmed
                // (sent again), a held document is set aside and fetched whole again.
                Err(error) => {
                    if !is_snapshot && let Some(doc_id) = DocId::parse(&pull.doc) {
                        self.set_aside(&doc_id)?;
                        set_aside_now.push(pull.doc.clone());
                    }
                    failures.push(format!("{}: {error}", pull.doc));
                }
            }
        }
        // A round that went through clears the last error, or names the documents not taken.
        let error =
            if failures.is_empty() { String::new() } else { format!("documents not taken: {}", failures.join("; ")) };
        self.record_sync_error(&error)?;
        let received = list_json(&received);
        // The server has taken this round's resets (the response proves it read the request);
        // documents set aside while applying this response wait for the next round.
        let reset: Vec<String> = self
            .meta_list("sync_reset")?
            .into_iter()
            .filter(|doc| !round.request.reset.contains(doc) || set_aside_now.contains(doc))
            .collect();
        let reset = list_json(&reset);
        self.set_meta(&[
            ("sync_reset", reset.as_str()),
            ("sync_received", received.as_str()),
            ("sync_cursor", response.cursor.to_string().as_str()),
            ("sync_last_success_ms", self.clock().now_ms().to_string().as_str()),
        ])?;
        Ok(outcome)
    }
}

impl Store {
    /// Sets a document aside after the server refused its push for good: its unsynced
    /// changes go to a file beside the store, the document and its rows are purged, and the
    /// next round asks the server for it anew (`reset`).
    pub fn set_aside(&self, doc: &DocId) -> Result<()> {
        self.purge_document(doc)?;
        let mut reset = self.meta_list("sync_reset")?;
        if !reset.contains(&doc.to_string()) {
            reset.push(doc.to_string());
        }
        self.set_meta(&[("sync_reset", list_json(&reset).as_str())])
    }
}

impl Store {
    /// Applies one pulled document (a snapshot, changes, or both); returns its bytes, and
    /// whether a new generation replaced the device's copy with unsynced edits replayed.
    fn apply_pull(
        &self,
        doc: &str,
        snapshot: Option<serde_bytes::ByteBuf>,
        pulled: Vec<serde_bytes::ByteBuf>,
    ) -> Result<(usize, bool)> {
        let doc_id = DocId::parse(doc)
            .ok_or_else(|| Error::document(doc, "the server sent a document id this version does not know"))?;
        if matches!(doc_id.kind, DocKind::Register | DocKind::Sensitive) && self.heads(&doc_id).is_err() {
            // A grid that entered this device's scopes after enrollment: hold it now, named
            // from the reference document, keeping a sensitive document it already has.
            let code = GridCode::parse(&doc_id.key, self.code_format())?;
            let meta = self.reference_grid(&doc_id.key)?;
            let kind = meta.as_ref().and_then(|meta| GridKind::from_code(&meta.kind)).unwrap_or(GridKind::Community);
            let name = meta.map_or_else(|| doc_id.key.clone(), |meta| meta.name);
            let sensitive = doc_id.kind == DocKind::Sensitive
                || self.heads(&DocId { kind: DocKind::Sensitive, key: doc_id.key.clone() }).is_ok();
            self.add_grid(&Grid::new(code, &name, kind)?, sensitive)?;
        }
        let mut n_bytes = 0;
        let mut changes: Vec<Vec<u8>> = Vec::new();
        if let Some(snapshot) = snapshot {
            n_bytes += snapshot.len();
            let mut saved = crate::crdt::untrusted::load(&snapshot).map_err(|error| Error::document(doc, error))?;
            if matches!(doc_id.kind, DocKind::Register | DocKind::Sensitive) {
                // A newer generation (the server compacted the document) replaces this
                // device's copy, with its unsynced edits replayed; never merged into it.
                let theirs = generation::generation(&saved);
                let ours = self.generation_of(&doc_id)?;
                if theirs > ours {
                    let moved = self.replace_generation(&doc_id, saved)?;
                    n_bytes += pulled.iter().map(|change| change.len()).sum::<usize>();
                    let pulled: Vec<Vec<u8>> = pulled.into_iter().map(serde_bytes::ByteBuf::into_vec).collect();
                    if !pulled.is_empty() {
                        self.apply_changes(&doc_id, &pulled)?;
                    }
                    return Ok((n_bytes, moved.replayed.n_changes > 0));
                }
                if theirs < ours {
                    return Err(Error::document(doc, "the server sent an older generation than this device holds"));
                }
            }
            changes.extend(saved.get_changes(&[]).into_iter().map(|change| change.raw_bytes().to_vec()));
        }
        n_bytes += pulled.iter().map(|change| change.len()).sum::<usize>();
        changes.extend(pulled.into_iter().map(serde_bytes::ByteBuf::into_vec));
        self.apply_changes(&doc_id, &changes)?;
        Ok((n_bytes, false))
    }
}

/// Bookkeeping the sync engine keeps in the store's `meta` table.
impl Store {
    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with_reader(|conn| {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get::<_, String>(0)).optional()
        })
    }

    /// A list of document ids kept as JSON (`sync_received`, `sync_reset`); empty if unset.
    fn meta_list(&self, key: &str) -> Result<Vec<String>> {
        Ok(self.meta(key)?.and_then(|json| serde_json::from_str(&json).ok()).unwrap_or_default())
    }
}

/// A list of document ids as `meta_list` reads it back.
fn list_json(docs: &[String]) -> String {
    serde_json::Value::from(docs).to_string()
}
