-- The server's schema before versions were kept (user_version 0): a fixture for the upgrade test.
CREATE TABLE IF NOT EXISTS grids (code TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS workers (
    person TEXT PRIMARY KEY, role TEXT NOT NULL, department TEXT, grids TEXT NOT NULL  -- comma-separated grid codes
) STRICT;
CREATE TABLE IF NOT EXISTS enrollment_codes (
    code_hash TEXT PRIMARY KEY, person TEXT NOT NULL REFERENCES workers(person), created_ms INTEGER NOT NULL,
    used_ms INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS enrollment_codes_person ON enrollment_codes(person);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, person TEXT NOT NULL REFERENCES workers(person), actor BLOB NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS devices_person ON devices(person);
CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, snapshot BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS doc_scopes (
    scope TEXT NOT NULL, doc_id TEXT NOT NULL REFERENCES documents(doc_id), PRIMARY KEY (scope, doc_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_scopes_doc ON doc_scopes(doc_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    hash BLOB NOT NULL UNIQUE, actor BLOB NOT NULL, bytes BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS changes_doc ON changes(doc_id, seq);
CREATE TABLE IF NOT EXISTS device_docs (
    -- What each device holds. A snapshot sent is 'sent' until the device confirms it
    -- ('held'); a removal is 'removing' until confirmed, then the row goes.
    device_id TEXT NOT NULL REFERENCES devices(id), doc_id TEXT NOT NULL, up_to_seq INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'held',
    PRIMARY KEY (device_id, doc_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (
    -- A blob named by the SHA-256 of its bytes ('sha256:' and 64 lowercase hex digits):
    -- complete once all its bytes arrived and hashed to its name; until then one device's
    -- upload in progress (each device its own, so no device can spoil another's upload).
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices(id),  -- the uploader
    size INTEGER NOT NULL,
    received INTEGER NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS blobs_complete ON blobs(hash) WHERE complete = 1;
CREATE UNIQUE INDEX IF NOT EXISTS blobs_upload ON blobs(device_id, hash) WHERE complete = 0;
CREATE INDEX IF NOT EXISTS blobs_device ON blobs(device_id);
CREATE TABLE IF NOT EXISTS blob_chunks (
    -- A blob's bytes in the chunks they arrived in: [first, first + n_bytes).
    blob_id INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    first INTEGER NOT NULL,
    n_bytes INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    UNIQUE (blob_id, first)
) STRICT;
CREATE TABLE IF NOT EXISTS blob_refs (
    -- Which documents refer to which blobs (incidents' photos and evidence): a device may
    -- download a blob that a document it may read refers to.
    hash TEXT NOT NULL, doc_id TEXT NOT NULL REFERENCES documents(doc_id), PRIMARY KEY (hash, doc_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_refs_doc ON blob_refs(doc_id);
