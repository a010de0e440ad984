-- The change log of the realtime feed (SPEC §14). Rows are written by each data table's change
-- capture triggers (installed at activation), in the writing transaction.
CREATE TABLE meta.meta_changes (
    -- The event id: assigned when the row is written, so not in commit order by itself; the feed
    -- reads a row only once every transaction older than `txid` has ended (see the store).
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    txid         XID8 NOT NULL DEFAULT pg_current_xact_id(),
    at           TIMESTAMPTZ(3) NOT NULL DEFAULT clock_timestamp(),
    tenant_id    TEXT NOT NULL,
    realm_id     TEXT NOT NULL,
    entity       TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    op           TEXT NOT NULL,
    row_version  BIGINT NOT NULL,
    -- The record after the change (create, update) and before it (update, delete), as JSON text.
    record       TEXT,
    previous     TEXT,
    CONSTRAINT meta_changes_pkey PRIMARY KEY (seq),
    CONSTRAINT meta_changes_op_check CHECK (op IN ('create', 'update', 'delete'))
);

-- The highest event id retention has purged: a subscriber resuming from an older id gets `reset`.
CREATE TABLE meta.meta_changes_purged (
    id       SMALLINT NOT NULL,
    through  BIGINT NOT NULL,
    CONSTRAINT meta_changes_purged_pkey PRIMARY KEY (id),
    CONSTRAINT meta_changes_purged_one_row CHECK (id = 1)
);
INSERT INTO meta.meta_changes_purged (id, through) VALUES (1, 0);
