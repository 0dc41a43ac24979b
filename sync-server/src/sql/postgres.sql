-- The server's schema on PostgreSQL (version in "schema_version"; see storage/postgres.rs).
-- The same tables as on SQLite, in PostgreSQL's types: text, bigint, bytea, boolean.
CREATE TABLE IF NOT EXISTS "schema_version" (
    -- One row: the version of this schema the server last wrote.
    "one" boolean PRIMARY KEY DEFAULT true CHECK ("one"),
    "version" bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS "grids" ("code" text PRIMARY KEY, "name" text NOT NULL, "kind" text NOT NULL);
CREATE TABLE IF NOT EXISTS "workers" (
    "person" text PRIMARY KEY,
    "role" text NOT NULL,
    "department" text,
    "grids" text NOT NULL,  -- comma-separated grid codes
    "name" text,  -- the name posted on the card of the worker's grids; NULL: not posted
    "phone" text  -- the work phone posted with it, normalized
);
CREATE TABLE IF NOT EXISTS "enrollment_codes" (
    "code_hash" text PRIMARY KEY,
    "person" text NOT NULL REFERENCES "workers" ("person"),
    "created_ms" bigint NOT NULL,
    "used_ms" bigint
);
CREATE INDEX IF NOT EXISTS "enrollment_codes_person" ON "enrollment_codes" ("person");
CREATE TABLE IF NOT EXISTS "devices" (
    "id" text PRIMARY KEY,
    "person" text NOT NULL REFERENCES "workers" ("person"),
    "actor" bytea NOT NULL UNIQUE,
    "token_hash" text NOT NULL UNIQUE,
    "name" text NOT NULL,
    "created_ms" bigint NOT NULL,
    "revoked" boolean NOT NULL DEFAULT false,
    "token_expires_ms" bigint,  -- NULL: enrolled before tokens expired
    "last_seen_ms" bigint,
    "last_sync_ms" bigint,  -- its last sync's report; NULL: none yet
    "version" text,
    "pending" bigint
);
CREATE INDEX IF NOT EXISTS "devices_person" ON "devices" ("person");
CREATE TABLE IF NOT EXISTS "documents" ("doc_id" text PRIMARY KEY, "snapshot" bytea NOT NULL);
CREATE TABLE IF NOT EXISTS "doc_scopes" (
    "scope" text NOT NULL,
    "doc_id" text NOT NULL REFERENCES "documents" ("doc_id"),
    PRIMARY KEY ("scope", "doc_id")
);
CREATE INDEX IF NOT EXISTS "doc_scopes_doc" ON "doc_scopes" ("doc_id");
CREATE TABLE IF NOT EXISTS "changes" (
    -- The log. Sequence numbers are taken only while holding the log's advisory lock
    -- (storage/postgres.rs, `commit`), so they become visible in order.
    "seq" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "doc_id" text NOT NULL REFERENCES "documents" ("doc_id"),
    "hash" bytea NOT NULL UNIQUE,
    "actor" bytea NOT NULL,
    "bytes" bytea NOT NULL,
    "received_ms" bigint  -- the server's clock; NULL: stored before it was kept
);
CREATE INDEX IF NOT EXISTS "changes_doc" ON "changes" ("doc_id", "seq");
CREATE TABLE IF NOT EXISTS "device_docs" (
    -- What each device holds. A snapshot sent is 'sent' until the device confirms it
    -- ('held'); a removal is 'removing' until confirmed, then the row goes.
    "device_id" text NOT NULL REFERENCES "devices" ("id"),
    "doc_id" text NOT NULL,
    "up_to_seq" bigint NOT NULL,
    "state" text NOT NULL DEFAULT 'held',
    PRIMARY KEY ("device_id", "doc_id")
);
CREATE TABLE IF NOT EXISTS "blobs" (
    -- A blob named by the SHA-256 of its bytes ('sha256:' and 64 lowercase hex digits):
    -- complete once all its bytes arrived and hashed to its name; until then one device's
    -- upload in progress (each device its own, so no device can spoil another's upload).
    "id" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "hash" text NOT NULL,
    "device_id" text NOT NULL REFERENCES "devices" ("id"),  -- the uploader
    "size" bigint NOT NULL,
    "received" bigint NOT NULL,
    "complete" boolean NOT NULL DEFAULT false,
    "updated_ms" bigint NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "blobs_complete" ON "blobs" ("hash") WHERE "complete";
CREATE UNIQUE INDEX IF NOT EXISTS "blobs_upload" ON "blobs" ("device_id", "hash") WHERE NOT "complete";
CREATE INDEX IF NOT EXISTS "blobs_device" ON "blobs" ("device_id");
CREATE TABLE IF NOT EXISTS "blob_chunks" (
    -- A blob's bytes in the chunks they arrived in: [first, first + n_bytes).
    "blob_id" bigint NOT NULL REFERENCES "blobs" ("id") ON DELETE CASCADE,
    "first" bigint NOT NULL,
    "n_bytes" bigint NOT NULL,
    "bytes" bytea NOT NULL,
    UNIQUE ("blob_id", "first")
);
CREATE TABLE IF NOT EXISTS "blob_refs" (
    -- Which documents refer to which blobs (incidents' photos and evidence): a device may
    -- download a blob that a document it may read refers to.
    "hash" text NOT NULL,
    "doc_id" text NOT NULL REFERENCES "documents" ("doc_id"),
    PRIMARY KEY ("hash", "doc_id")
);
CREATE INDEX IF NOT EXISTS "blob_refs_doc" ON "blob_refs" ("doc_id");
