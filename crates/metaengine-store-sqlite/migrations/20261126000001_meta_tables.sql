-- The engine's own tables (SPEC §2.1), SQLite flavour: same names without schemas; uuids and
-- timestamps as text (RFC 3339, UTC, milliseconds), booleans as 0/1, JSON as checked text.
CREATE TABLE tenant (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- The platform tenant, so that a fresh database is usable at once.
INSERT INTO tenant (id, name) VALUES ('default', 'Default tenant');

CREATE TABLE meta_entities (
    id              TEXT NOT NULL PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT,
    active_version  TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    created_by      TEXT NOT NULL
);
CREATE UNIQUE INDEX meta_entities_name_key ON meta_entities (name);

CREATE TABLE meta_versions (
    id            TEXT NOT NULL PRIMARY KEY,
    entity_name   TEXT NOT NULL REFERENCES meta_entities (name) ON DELETE CASCADE ON UPDATE CASCADE,
    version       TEXT NOT NULL,
    schema        TEXT NOT NULL CHECK (json_valid(schema)),
    is_active     INTEGER NOT NULL DEFAULT 0 CHECK (is_active IN (0, 1)),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    created_by    TEXT NOT NULL,
    -- Last activation; set once a version has been active, which makes it immutable for good.
    activated_at  TEXT
);
CREATE UNIQUE INDEX meta_versions_entity_name_version_key ON meta_versions (entity_name, version);
CREATE INDEX meta_versions_entity_name_idx ON meta_versions (entity_name);
CREATE INDEX meta_versions_entity_name_is_active_idx ON meta_versions (entity_name, is_active);
-- At most one active version per entity, enforced by the database.
CREATE UNIQUE INDEX meta_versions_one_active_key ON meta_versions (entity_name) WHERE is_active;

CREATE TABLE meta_audit (
    id             TEXT NOT NULL PRIMARY KEY,
    event_id       TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    timestamp      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    user_id        TEXT NOT NULL,
    tenant_id      TEXT NOT NULL,
    realm_id       TEXT NOT NULL,
    action         TEXT NOT NULL,
    resource       TEXT NOT NULL,
    details        TEXT CHECK (details IS NULL OR json_valid(details)),
    result         TEXT NOT NULL CHECK (result IN ('success', 'failure')),
    error_message  TEXT
);
CREATE UNIQUE INDEX meta_audit_event_id_key ON meta_audit (event_id);
CREATE INDEX meta_audit_tenant_id_timestamp_idx ON meta_audit (tenant_id, timestamp DESC);
CREATE INDEX meta_audit_user_id_timestamp_idx ON meta_audit (user_id, timestamp DESC);
CREATE INDEX meta_audit_resource_timestamp_idx ON meta_audit (resource, timestamp DESC);
CREATE INDEX meta_audit_event_type_idx ON meta_audit (event_type);
-- Not in the seed: serves the unfiltered newest-first listing and retention purges.
CREATE INDEX meta_audit_timestamp_idx ON meta_audit (timestamp DESC);
