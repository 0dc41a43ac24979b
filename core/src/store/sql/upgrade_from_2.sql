-- Version 3: local captures are committed as pending captures and made into automerge
-- changes by a flush (store/pending.rs).

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
