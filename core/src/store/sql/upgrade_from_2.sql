-- Version 3: local captures are committed as pending captures and made into automerge
-- changes by a flush (store/pending.rs); incidents and their projection.

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
