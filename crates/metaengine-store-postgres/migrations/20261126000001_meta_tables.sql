-- The engine's own tables (SPEC §2.1). Entity data tables are created at activation, not here.
CREATE SCHEMA IF NOT EXISTS meta;
CREATE SCHEMA IF NOT EXISTS core;

CREATE TABLE core.tenant (
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active',
    created_at  TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT tenant_pkey PRIMARY KEY (id),
    CONSTRAINT tenant_status_check CHECK (status IN ('active', 'suspended'))
);

-- The platform tenant, so that a fresh database is usable at once.
INSERT INTO core.tenant (id, name) VALUES ('default', 'Default tenant');

CREATE TABLE meta.meta_entities (
    id              UUID NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT,
    active_version  TEXT,
    created_at      TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at      TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by      TEXT NOT NULL,
    CONSTRAINT meta_entities_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX meta_entities_name_key ON meta.meta_entities (name);

CREATE TABLE meta.meta_versions (
    id            UUID NOT NULL,
    entity_name   TEXT NOT NULL,
    version       TEXT NOT NULL,
    schema        JSONB NOT NULL,
    is_active     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by    TEXT NOT NULL,
    -- Last activation; set once a version has been active, which makes it immutable for good.
    activated_at  TIMESTAMPTZ(3),
    CONSTRAINT meta_versions_pkey PRIMARY KEY (id),
    CONSTRAINT meta_versions_entity_name_fkey FOREIGN KEY (entity_name)
        REFERENCES meta.meta_entities (name) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX meta_versions_entity_name_version_key ON meta.meta_versions (entity_name, version);
CREATE INDEX meta_versions_entity_name_idx ON meta.meta_versions (entity_name);
CREATE INDEX meta_versions_entity_name_is_active_idx ON meta.meta_versions (entity_name, is_active);
-- At most one active version per entity, enforced by the database.
CREATE UNIQUE INDEX meta_versions_one_active_key ON meta.meta_versions (entity_name) WHERE is_active;

CREATE TABLE meta.meta_audit (
    id             UUID NOT NULL,
    event_id       TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    timestamp      TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    user_id        TEXT NOT NULL,
    tenant_id      TEXT NOT NULL,
    realm_id       TEXT NOT NULL,
    action         TEXT NOT NULL,
    resource       TEXT NOT NULL,
    details        JSONB,
    result         TEXT NOT NULL,
    error_message  TEXT,
    CONSTRAINT meta_audit_pkey PRIMARY KEY (id),
    CONSTRAINT meta_audit_result_check CHECK (result IN ('success', 'failure'))
);
CREATE UNIQUE INDEX meta_audit_event_id_key ON meta.meta_audit (event_id);
CREATE INDEX meta_audit_tenant_id_timestamp_idx ON meta.meta_audit (tenant_id, timestamp DESC);
CREATE INDEX meta_audit_user_id_timestamp_idx ON meta.meta_audit (user_id, timestamp DESC);
CREATE INDEX meta_audit_resource_timestamp_idx ON meta.meta_audit (resource, timestamp DESC);
CREATE INDEX meta_audit_event_type_idx ON meta.meta_audit (event_type);
-- Not in the seed: serves the unfiltered newest-first listing and retention purges.
CREATE INDEX meta_audit_timestamp_idx ON meta.meta_audit (timestamp DESC);
