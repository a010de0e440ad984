//! PostgreSQL backend: the shared conformance suite, the drift test of the row types against the
//! live catalog, and the database-enforced rules. Each test runs in its own database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use metaengine_store::Store;
use metaengine_store::rows::all_tables;
use metaengine_store_postgres::PostgresStore;
use metaengine_store_postgres::testing::TestDatabase;
use sqlx::Row;

async fn fresh_store() -> (TestDatabase, PostgresStore) {
    let db = TestDatabase::create().await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 1);
    (db, store)
}

async fn fresh() -> (TestDatabase, Arc<dyn Store>) {
    let (db, store) = fresh_store().await;
    (db, Arc::new(store))
}

metaengine_store::conformance_tests!(fresh());

#[tokio::test]
async fn row_types_match_the_migrated_catalog() {
    let (_db, store) = fresh_store().await;
    for (schema, table, columns) in all_tables() {
        let live = sqlx::query(
            "SELECT column_name::text AS name, data_type::text AS type, \
             is_nullable = 'YES' AS nullable, datetime_precision::int AS precision \
             FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 \
             ORDER BY ordinal_position",
        )
        .bind(schema)
        .bind(table)
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert!(!live.is_empty(), "table {schema}.{table} missing");
        let live: Vec<(String, String, bool)> = live
            .iter()
            .map(|r| (r.get("name"), r.get("type"), r.get("nullable")))
            .collect();
        let declared: Vec<(String, String, bool)> = columns
            .iter()
            .map(|c| {
                (
                    c.name.to_owned(),
                    c.kind.postgres_type().to_owned(),
                    c.nullable,
                )
            })
            .collect();
        assert_eq!(
            live, declared,
            "{schema}.{table}: migration (left) vs Rust row type (right)"
        );
    }
    // Timestamps keep milliseconds, as the seed's TIMESTAMP(3).
    let coarse: Vec<String> = sqlx::query_scalar(
        "SELECT table_name || '.' || column_name FROM information_schema.columns \
         WHERE table_schema IN ('meta', 'core') AND data_type LIKE 'timestamp%' \
         AND datetime_precision <> 3",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(
        coarse.is_empty(),
        "timestamps without millisecond precision: {coarse:?}"
    );
}

#[tokio::test]
async fn every_index_of_the_spec_exists() {
    let (_db, store) = fresh_store().await;
    let defs: Vec<String> =
        sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE schemaname = 'meta'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    for expected in [
        "UNIQUE INDEX meta_entities_name_key ON meta.meta_entities USING btree (name)",
        "UNIQUE INDEX meta_versions_entity_name_version_key ON meta.meta_versions USING btree (entity_name, version)",
        "INDEX meta_versions_entity_name_idx ON meta.meta_versions USING btree (entity_name)",
        "INDEX meta_versions_entity_name_is_active_idx ON meta.meta_versions USING btree (entity_name, is_active)",
        "UNIQUE INDEX meta_versions_one_active_key ON meta.meta_versions USING btree (entity_name) WHERE is_active",
        "UNIQUE INDEX meta_audit_event_id_key ON meta.meta_audit USING btree (event_id)",
        "INDEX meta_audit_tenant_id_timestamp_idx ON meta.meta_audit USING btree (tenant_id, \"timestamp\" DESC)",
        "INDEX meta_audit_user_id_timestamp_idx ON meta.meta_audit USING btree (user_id, \"timestamp\" DESC)",
        "INDEX meta_audit_resource_timestamp_idx ON meta.meta_audit USING btree (resource, \"timestamp\" DESC)",
        "INDEX meta_audit_event_type_idx ON meta.meta_audit USING btree (event_type)",
    ] {
        assert!(
            defs.iter().any(|d| d.ends_with(expected)),
            "missing index: {expected}\nhave: {defs:#?}"
        );
    }
    let fk: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'meta_versions_entity_name_fkey'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        fk,
        "FOREIGN KEY (entity_name) REFERENCES meta.meta_entities(name) ON UPDATE CASCADE ON DELETE CASCADE"
    );
}

#[tokio::test]
async fn the_database_allows_one_active_version_per_entity() {
    let (_db, store) = fresh_store().await;
    let p = store.pool();
    sqlx::query(
        "INSERT INTO meta.meta_entities (id, name, created_by) VALUES (gen_random_uuid(), 'Invoice', 'x')",
    )
    .execute(p)
    .await
    .unwrap();
    let insert = "INSERT INTO meta.meta_versions (id, entity_name, version, schema, is_active, created_by) \
                  VALUES (gen_random_uuid(), 'Invoice', $1, '{}', TRUE, 'x')";
    sqlx::query(insert).bind("v1").execute(p).await.unwrap();
    let second = sqlx::query(insert).bind("v2").execute(p).await;
    let err = second.unwrap_err();
    assert!(
        err.as_database_error()
            .is_some_and(|e| e.is_unique_violation()),
        "{err}"
    );
}
