-- The audit trail's hash chain (SPEC §16). Each tenant's rows are chained in insertion order:
-- `seq` is the row's position, `hash = sha256(prev_hash || content)`. The columns are NULL only
-- for rows written before this migration until `migrate` chains them (in the same run) and for
-- rows inserted by hand, which `audit verify` reports.
ALTER TABLE meta.meta_audit
    ADD COLUMN seq        BIGINT,
    ADD COLUMN prev_hash  TEXT,
    ADD COLUMN hash       TEXT;
-- Serves verification in chain order; a position is never taken twice.
CREATE UNIQUE INDEX meta_audit_tenant_id_seq_key ON meta.meta_audit (tenant_id, seq);

-- The end of each tenant's chain. Every append locks its tenant's row here, which serializes the
-- appends of one tenant across transactions and instances.
CREATE TABLE meta.meta_audit_heads (
    tenant_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    before_hash TEXT NOT NULL,
    hash        TEXT NOT NULL,
    CONSTRAINT meta_audit_heads_pkey PRIMARY KEY (tenant_id)
);

-- `sha256(prev || content)` in hex, as `metaengine_store::chain::link` computes it: lets a record
-- write and its audit rows stay one statement.
CREATE FUNCTION meta.audit_hash(prev TEXT, content TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to(prev || content, 'UTF8')), 'hex') $$;
