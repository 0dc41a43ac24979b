-- Version 4: field work (activity documents, one per grid and month), projected.

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
