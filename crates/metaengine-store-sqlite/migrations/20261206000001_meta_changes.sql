-- The change log of the realtime feed (SPEC §14). Rows are written by each data table's change
-- capture triggers (installed at activation), in the writing transaction. SQLite has one writer
-- at a time, so `seq` is in commit order. AUTOINCREMENT: an id is never reused, even after
-- retention has purged every row.
CREATE TABLE meta_changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    tenant_id    TEXT NOT NULL,
    realm_id     TEXT NOT NULL,
    entity       TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    op           TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    row_version  INTEGER NOT NULL,
    record       TEXT,
    previous     TEXT
);

-- The highest event id retention has purged: a subscriber resuming from an older id gets `reset`.
CREATE TABLE meta_changes_purged (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    through  INTEGER NOT NULL
);
INSERT INTO meta_changes_purged (id, through) VALUES (1, 0);
