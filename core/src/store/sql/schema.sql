-- The current schema (version 3), for a fresh store. An older store reaches the same
-- schema through upgrade_from_N.sql; a test checks that both are equal.

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

CREATE TABLE pending_captures (
    -- Local captures committed with their projection rows, not yet made into automerge
    -- changes (store/pending.rs). Emptied before anything reads or merges the documents.
    seq INTEGER PRIMARY KEY,
    grid_code TEXT NOT NULL,
    time_ms INTEGER NOT NULL,               -- when the device captured it (the change's time)
    writes TEXT NOT NULL                    -- JSON: the edits, per document and record
) STRICT;

CREATE TABLE failed_captures (
    -- Pending captures that could not be made into changes (written by a version whose
    -- fields this one does not know, or damaged): kept, reported, never dropped; the
    -- others flush past them.
    seq INTEGER PRIMARY KEY,
    grid_code TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    writes TEXT NOT NULL,
    error TEXT NOT NULL
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
    birth_date TEXT,
    phone_tail TEXT,                        -- last 4 digits of the phone
    id_tail TEXT                            -- last 4 characters of the ID number
) STRICT;
CREATE INDEX resident_details_grid ON resident_details(grid_code);
CREATE INDEX resident_details_phone_tail ON resident_details(phone_tail);
CREATE INDEX resident_details_id_tail ON resident_details(id_tail);

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

-- Tokens are the overlapping character pairs of a name ('陈秀英' → '陈秀 秀英'), made by
-- the core, so that a two-character fragment is one token and a longer one a phrase.
-- FTS5's trigram tokenizer cannot find two-character fragments, which is how Chinese
-- names are searched. The 'ascii' tokenizer only splits at ASCII spaces and punctuation
-- and takes every other character as it is, including rare name characters that
-- unicode61's Unicode 6.1 tables do not know.
CREATE VIRTUAL TABLE resident_name_search USING fts5(
    grams, content='', contentless_delete=1, tokenize='ascii'
);  -- rowid = residents.rowid
CREATE VIRTUAL TABLE building_place_search USING fts5(
    grams, content='', contentless_delete=1, tokenize='ascii'
);  -- rowid = buildings.rowid: address and name
CREATE VIRTUAL TABLE household_place_search USING fts5(
    grams, content='', contentless_delete=1, tokenize='ascii'
);  -- rowid = households.rowid: own address and room

-- Incidents, projected from their documents: the derived state, the readable timeline
-- and each department's clock, so that no query loads automerge.

CREATE TABLE incidents (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    grid_code TEXT NOT NULL,
    catalog_item TEXT NOT NULL,
    class TEXT,                             -- the catalog item's class, when the catalog knows it
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    location TEXT,                          -- 'lat,lng' WGS-84
    phase TEXT NOT NULL,
    reporter TEXT,                          -- person id of the reporter
    reported_ms INTEGER,
    lead_department TEXT,                   -- the department it is with
    co_handlers TEXT NOT NULL,              -- department codes, comma-separated
    lead_started_ms INTEGER,                -- the lead department's clock
    lead_stopped_ms INTEGER,
    lead_stop TEXT,                         -- 'completed' | 'rejected' | 'redispatched'
    handled INTEGER NOT NULL,
    resolved_on_spot INTEGER NOT NULL,
    n_rejections INTEGER NOT NULL,
    n_urged INTEGER NOT NULL,
    escalated INTEGER NOT NULL,
    satisfaction INTEGER,
    closed_ms INTEGER,
    n_actions INTEGER NOT NULL,
    n_not_applied INTEGER NOT NULL
) STRICT;
CREATE INDEX incidents_grid ON incidents(grid_code);
CREATE INDEX incidents_phase ON incidents(phase);
CREATE INDEX incidents_lead ON incidents(lead_department);
CREATE INDEX incidents_class ON incidents(class);
CREATE INDEX incidents_reporter ON incidents(reporter);
CREATE INDEX incidents_reported ON incidents(reported_ms);

CREATE TABLE incident_actions (
    incident_id TEXT NOT NULL,              -- incidents.id
    position INTEGER NOT NULL,              -- in the timeline's (causal) order
    action TEXT,                            -- JSON as in the document; NULL if unreadable
    mark TEXT NOT NULL,                     -- JSON: applied, or why not
    PRIMARY KEY (incident_id, position)
) STRICT, WITHOUT ROWID;

CREATE TABLE incident_departments (
    incident_id TEXT NOT NULL,              -- incidents.id
    position INTEGER NOT NULL,              -- order of dispatch
    department TEXT NOT NULL,
    lead INTEGER NOT NULL,
    started_ms INTEGER NOT NULL,
    stopped_ms INTEGER,
    stop TEXT,
    PRIMARY KEY (incident_id, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX incident_departments_department ON incident_departments(department);

CREATE TABLE visits (
    id TEXT PRIMARY KEY,
    doc_key TEXT NOT NULL,                  -- the activity document: <grid>:<YYYY-MM>
    grid_code TEXT NOT NULL,
    worker TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    target_kind TEXT NOT NULL,              -- household | organization
    target_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    findings TEXT NOT NULL,
    follow_up TEXT,
    incident_id TEXT,
    lat REAL,
    lng REAL
) STRICT;
CREATE INDEX visits_doc ON visits(doc_key);
CREATE INDEX visits_grid_time ON visits(grid_code, time_ms);
CREATE INDEX visits_worker_time ON visits(worker, time_ms);
CREATE INDEX visits_target ON visits(target_id);
CREATE INDEX visits_incident ON visits(incident_id);

CREATE TABLE checkins (
    id TEXT PRIMARY KEY,
    doc_key TEXT NOT NULL,
    grid_code TEXT NOT NULL,
    worker TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    lat REAL NOT NULL,
    lng REAL NOT NULL
) STRICT;
CREATE INDEX checkins_doc ON checkins(doc_key);
CREATE INDEX checkins_worker_time ON checkins(worker, time_ms);
CREATE INDEX checkins_grid_time ON checkins(grid_code, time_ms);

CREATE TABLE patrols (
    id TEXT PRIMARY KEY,
    doc_key TEXT NOT NULL,
    grid_code TEXT NOT NULL,
    worker TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER NOT NULL,
    distance_m REAL NOT NULL,
    n_points INTEGER NOT NULL,
    n_flagged INTEGER NOT NULL,
    track TEXT NOT NULL                     -- the track blob's hash
) STRICT;
CREATE INDEX patrols_doc ON patrols(doc_key);
CREATE INDEX patrols_worker_time ON patrols(worker, started_ms);
CREATE INDEX patrols_grid_time ON patrols(grid_code, started_ms);

CREATE TABLE patrol_buildings (
    patrol_id TEXT NOT NULL,
    building_id TEXT NOT NULL,
    PRIMARY KEY (patrol_id, building_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX patrol_buildings_building ON patrol_buildings(building_id);

CREATE TABLE views (
    -- Views of full sensitive values: the audit trail (activity documents, map `views`).
    id TEXT PRIMARY KEY,
    doc_key TEXT NOT NULL,
    grid_code TEXT NOT NULL,
    worker TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    record TEXT NOT NULL,                   -- resident/<id>
    fields TEXT NOT NULL,                   -- JSON array of field names
    reason TEXT NOT NULL
) STRICT;
CREATE INDEX views_doc ON views(doc_key);
CREATE INDEX views_grid_time ON views(grid_code, time_ms);
CREATE INDEX views_record ON views(record);
