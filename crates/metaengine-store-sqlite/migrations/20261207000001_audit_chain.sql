-- The audit trail's hash chain (SPEC §16). Each tenant's rows are chained in insertion order:
-- `seq` is the row's position, `hash = sha256(prev_hash || content)`. The columns are NULL only
-- for rows written before this migration until `migrate` chains them (in the same run) and for
-- rows inserted by hand, which `audit verify` reports.
ALTER TABLE meta_audit ADD COLUMN seq INTEGER;
ALTER TABLE meta_audit ADD COLUMN prev_hash TEXT;
ALTER TABLE meta_audit ADD COLUMN hash TEXT;
-- Serves verification in chain order; a position is never taken twice.
CREATE UNIQUE INDEX meta_audit_tenant_id_seq_key ON meta_audit (tenant_id, seq);

-- The end of each tenant's chain (appends are serialized by SQLite's single writer).
CREATE TABLE meta_audit_heads (
    tenant_id   TEXT NOT NULL PRIMARY KEY,
    seq         INTEGER NOT NULL,
    before_hash TEXT NOT NULL,
    hash        TEXT NOT NULL
);
