-- Schema version 1, as released: documents, bookkeeping and the record projection.
-- Kept to test the upgrade path; a fresh store is created from schema.sql.

CREATE TABLE meta (
    -- Device identity (the automerge actor) and store settings.
    key TEXT PRIMARY KEY,
    value ANY
) STRICT;

CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY,                -- 'register/440703001001001'
    kind TEXT NOT NULL,                     -- 'register' | 'sensitive'
    grid_code TEXT NOT NULL,
    acked_heads BLOB NOT NULL DEFAULT x'',  -- heads the sync server has acknowledged, 32 bytes each
    n_unacked_folded INTEGER NOT NULL DEFAULT 0  -- unacknowledged local changes folded into the snapshot
) STRICT;
CREATE INDEX documents_grid ON documents(grid_code);

CREATE TABLE document_snapshots (
    -- Apart from `documents`, so that bookkeeping updates never rewrite the snapshot's
    -- overflow pages.
    doc_id TEXT PRIMARY KEY REFERENCES documents(doc_id) ON DELETE CASCADE,
    snapshot BLOB NOT NULL                  -- automerge save() of the document
) STRICT;

CREATE TABLE document_chunks (
    -- Appended by every capture: the only bookkeeping row a capture writes. A rowid table
    -- with no index on doc_id, on purpose: an append then writes one page (an index
    -- would add a second one to every capture). Reading a document's chunks scans the
    -- table, which holds at most 1,024 chunks per document before they are folded into
    -- its snapshot. doc_id is not declared a foreign key for the same reason; chunks are
    -- deleted with their document in code.
    seq INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL,                   -- documents.doc_id
    bytes BLOB NOT NULL,                    -- automerge changes, as load_incremental reads them
    n_unacked INTEGER NOT NULL              -- of them, local changes the server has not acknowledged
) STRICT;

CREATE TABLE grids (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,                   -- 'active' | 'split@YYYY-MM-DD' | 'merged@YYYY-MM-DD'
    successors TEXT NOT NULL DEFAULT '',    -- grid codes, comma-separated
    predecessors TEXT NOT NULL DEFAULT '',
    has_sensitive INTEGER NOT NULL          -- whether this device holds the grid's sensitive document
) STRICT;

-- The projection: one row per record, rebuilt from the documents in the same
-- transaction as every change. Columns are named as the document fields. References
-- between records carry no FOREIGN KEY: a merge may briefly deliver a household before
-- its building, or keep one whose building another device erased.

CREATE TABLE buildings (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    grid_code TEXT NOT NULL,
    name TEXT,
    address TEXT,
    location TEXT,                          -- 'lat,lng' WGS-84
    floors INTEGER,
    units INTEGER,
    usage TEXT,
    status TEXT
) STRICT;
CREATE INDEX buildings_grid ON buildings(grid_code);

CREATE TABLE households (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    grid_code TEXT NOT NULL,
    building TEXT,                          -- buildings.id
    room TEXT,
    address TEXT,
    residence_type TEXT,
    status TEXT
) STRICT;
CREATE INDEX households_grid ON households(grid_code);
CREATE INDEX households_building ON households(building);

CREATE TABLE residents (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    grid_code TEXT NOT NULL,
    household TEXT,                         -- households.id
    name TEXT,
    gender TEXT,
    relation TEXT,
    residence_type TEXT,
    status TEXT
) STRICT;
CREATE INDEX residents_grid ON residents(grid_code);
CREATE INDEX residents_household ON residents(household);

CREATE TABLE resident_details (
    -- Fields from the grid's sensitive document; absent on devices without it.
    resident_id TEXT PRIMARY KEY,           -- residents.id
    grid_code TEXT NOT NULL,
    id_number TEXT,
    phone TEXT,
    birth_date TEXT
) STRICT;
CREATE INDEX resident_details_grid ON resident_details(grid_code);

CREATE TABLE resident_tags (
    resident_id TEXT NOT NULL,              -- residents.id
    tag TEXT NOT NULL,
    PRIMARY KEY (resident_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX resident_tags_tag ON resident_tags(tag);

CREATE TABLE organizations (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    grid_code TEXT NOT NULL,
    name TEXT,
    uscc TEXT,
    kind TEXT,
    address TEXT,
    location TEXT,
    building TEXT,                          -- buildings.id
    contact_name TEXT,
    contact_phone TEXT,
    status TEXT
) STRICT;
CREATE INDEX organizations_grid ON organizations(grid_code);
CREATE INDEX organizations_building ON organizations(building);

CREATE TABLE components (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    grid_code TEXT NOT NULL,
    subclass TEXT,
    name TEXT,
    location TEXT,
    state TEXT
) STRICT;
CREATE INDEX components_grid ON components(grid_code);
