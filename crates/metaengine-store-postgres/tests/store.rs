//! PostgreSQL backend: the shared conformance suite, the drift test of the row types against the
//! live catalog, and the database-enforced rules. Each test runs in its own database.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed step is a failed test"
)]

use metaengine_store_sql::SqlStore;
use std::sync::Arc;

use metaengine_store::Store;
use metaengine_store::rows::all_tables;
use metaengine_store_postgres::PostgresStore;
use metaengine_store_postgres::testing::TestDatabase;
use sqlx::Row;

async fn fresh_store() -> (TestDatabase, SqlStore) {
    let db = TestDatabase::create().await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 6);
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
        .fetch_all(store.postgres_pool().unwrap())
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
    .fetch_all(store.postgres_pool().unwrap())
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
            .fetch_all(store.postgres_pool().unwrap())
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
    .fetch_one(store.postgres_pool().unwrap())
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
    let p = store.postgres_pool().unwrap();
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

struct PgRaw(sqlx::PgPool);

#[async_trait::async_trait]
impl metaengine_store::testkit::tables::RawTables for PgRaw {
    async fn columns(&self, table: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'core' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&self.0)
        .await
        .unwrap()
    }

    async fn insert_invoice(&self, number: &str, total: &str) {
        sqlx::query(
            "INSERT INTO core.ent_invoice (tenant_id, realm_id, id, created_at, updated_at, \
             created_by, updated_by, invoice_number, total_amount) \
             VALUES ('t1', 'r1', $1, now(), now(), 'u', 'u', $2, CAST($3 AS numeric))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(number)
        .bind(total)
        .execute(&self.0)
        .await
        .unwrap();
    }

    async fn set_notes(&self, number: &str, notes: &str) {
        sqlx::query("UPDATE core.ent_invoice SET notes = $2 WHERE invoice_number = $1")
            .bind(number)
            .bind(notes)
            .execute(&self.0)
            .await
            .unwrap();
    }

    async fn notes(&self, number: &str) -> Option<String> {
        sqlx::query_scalar("SELECT notes FROM core.ent_invoice WHERE invoice_number = $1")
            .bind(number)
            .fetch_one(&self.0)
            .await
            .unwrap()
    }

    async fn total(&self, number: &str) -> String {
        sqlx::query_scalar(
            "SELECT total_amount::text FROM core.ent_invoice WHERE invoice_number = $1",
        )
        .bind(number)
        .fetch_one(&self.0)
        .await
        .unwrap()
    }

    async fn count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM core.ent_invoice")
            .fetch_one(&self.0)
            .await
            .unwrap()
    }
}

async fn fresh_with_raw() -> (
    TestDatabase,
    Arc<dyn Store>,
    Arc<dyn metaengine_store::testkit::tables::RawTables>,
) {
    let (db, store) = fresh_store().await;
    let raw = Arc::new(PgRaw(store.postgres_pool().unwrap().clone()));
    (db, Arc::new(store), raw)
}

metaengine_store::table_conformance_tests!(fresh_with_raw());

#[tokio::test]
async fn data_tables_lead_every_key_with_the_tenant() {
    let (_db, store) = fresh_store().await;
    let s: &dyn Store = &store;
    let schema = serde_json::json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
        { "name": "status", "type": "enum", "enumValues": ["draft", "paid"], "indexed": true },
        { "name": "dueDate", "type": "date" }
    ], "indexes": [{ "fields": ["status", "-dueDate"] }] });
    let actor = metaengine_store::testkit::actor();
    let audit = metaengine_store::NewAudit::success(
        metaengine_store::EventType::EntityCreate,
        &actor,
        "Invoice",
        None,
    );
    s.create_entity(
        &metaengine_store::NewEntity {
            name: "Invoice".into(),
            description: None,
            created_by: "a".into(),
        },
        &audit,
    )
    .await
    .unwrap();
    s.create_version(
        &metaengine_store::NewVersion {
            entity_name: "Invoice".into(),
            version: "v1".into(),
            schema,
            created_by: "a".into(),
        },
        &audit,
    )
    .await
    .unwrap();
    s.activate_version("Invoice", "v1", &|_| vec![])
        .await
        .unwrap();
    let pk: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'core.ent_invoice'::regclass AND contype = 'p'",
    )
    .fetch_one(store.postgres_pool().unwrap())
    .await
    .unwrap();
    assert_eq!(pk, "PRIMARY KEY (tenant_id, id)");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'core' AND tablename = 'ent_invoice'",
    )
    .fetch_all(store.postgres_pool().unwrap())
    .await
    .unwrap();
    assert!(indexes.len() >= 4, "{indexes:#?}");
    for def in &indexes {
        assert!(
            def.contains("(tenant_id, "),
            "an index not led by tenant_id: {def}"
        );
    }
    assert!(
        indexes
            .iter()
            .any(|d| d.contains("UNIQUE") && d.contains("invoice_number")),
        "{indexes:#?}"
    );
    assert!(
        indexes
            .iter()
            .any(|d| d.contains("status NULLS FIRST, due_date DESC NULLS LAST, id DESC")),
        "{indexes:#?}"
    );
    let types: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = 'core' AND table_name = 'ent_invoice' ORDER BY ordinal_position",
    )
    .fetch_all(store.postgres_pool().unwrap())
    .await
    .unwrap();
    let types: Vec<(&str, &str)> = types
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("tenant_id", "text"),
            ("realm_id", "text"),
            ("id", "uuid"),
            ("created_at", "timestamp with time zone"),
            ("updated_at", "timestamp with time zone"),
            ("created_by", "text"),
            ("updated_by", "text"),
            ("row_version", "bigint"),
            ("invoice_number", "text"),
            ("status", "text"),
            ("due_date", "date"),
        ]
    );
}
metaengine_store::record_conformance_tests!(fresh());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_work_leaves_no_trace() {
    let db = TestDatabase::create().await;
    let store = PostgresStore::connect_with_pool_size(db.url(), 1)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    metaengine_store::testkit::records::cut_off_work_leaves_no_trace(Arc::new(store)).await;
}

/// Runs SQL on the test database, as a person with database access would.
fn exec_on(pool: sqlx::PgPool) -> metaengine_store::testkit::chain::Exec {
    Arc::new(move |sql: String| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query(&sql).execute(&pool).await.unwrap();
        })
    })
}

#[tokio::test]
async fn audit_tampering_is_found() {
    let (_db, store) = fresh_store().await;
    let exec = exec_on(store.postgres_pool().unwrap().clone());
    metaengine_store::testkit::chain::audit_tampering_is_found(
        Arc::new(store),
        exec,
        "meta.meta_audit",
    )
    .await;
}

#[tokio::test]
async fn sealed_rows_need_the_writers_key() {
    let (db, writer) = fresh_store().await;
    let url = db.url().to_owned();
    let open = |key: &'static [u8]| {
        let url = url.clone();
        async move {
            PostgresStore::connect(&url)
                .await
                .unwrap()
                .with_audit_key(key)
        }
    };
    let writer: Arc<dyn Store> = Arc::new(writer.with_audit_key(b"key one"));
    let (same, other) = (open(b"key one").await, open(b"key two").await);
    metaengine_store::testkit::chain::sealed_rows_need_the_writers_key(
        writer.clone(),
        Arc::new(same),
        Arc::new(other),
    )
    .await;
    // The chainer's vacuum (the chained rows' old versions): the rows the table holds after it.
    assert!(writer.audit_dead_rows().await.unwrap().is_some());
    assert_eq!(writer.vacuum_audit().await.unwrap(), Some(3));
}

#[tokio::test]
async fn the_chain_migration_chains_the_rows_already_there() {
    let db = TestDatabase::create().await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    let pool = store.postgres_pool().unwrap().clone();
    let before_chain = sqlx::migrate::Migrator {
        migrations: metaengine_store_postgres::MIGRATOR.migrations[..2]
            .to_vec()
            .into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before_chain.run(&pool).await.unwrap();
    metaengine_store::testkit::chain::rows_before_the_chain_are_chained(
        Arc::new(store),
        exec_on(pool),
        "meta.meta_audit",
    )
    .await;
}

/// The audit details of a batch or an import hold every created record's values (some 200 KB
/// for a thousand records): they are compressed with lz4, which this server has.
#[tokio::test]
async fn large_audit_details_are_compressed_with_lz4() {
    let (_db, store) = fresh_store().await;
    let pool = store.postgres_pool().unwrap().clone();
    let method: String = sqlx::query_scalar(
        "SELECT attcompression::text FROM pg_attribute \
         WHERE attrelid = 'meta.meta_audit'::regclass AND attname = 'details'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(method, "l", "lz4");
}

/// Chaining a sealed audit row changes no column that an index of the audit table reads (the
/// rows waiting for the chainer are listed in a table of their own), so PostgreSQL writes the
/// chained version on the row's own page without a new entry in any index (a HOT update), and
/// the row leaves the waiting list.
#[tokio::test]
async fn chaining_an_audit_row_touches_no_index() {
    use metaengine_store::{AuditActor, EventType, NewAudit, NewEntity};
    let (_db, store) = fresh_store().await;
    let pool = store.postgres_pool().unwrap().clone();
    let rows = 20;
    for i in 0..rows {
        let name = format!("E{i}");
        let new = NewEntity {
            name: name.clone(),
            description: None,
            created_by: "alice".into(),
        };
        let actor = AuditActor {
            user_id: "alice".into(),
            tenant_id: "acme".into(),
            realm_id: "main".into(),
        };
        let audit = NewAudit::success(EventType::EntityCreate, &actor, &name, None);
        store.create_entity(&new, &audit).await.unwrap();
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM meta.meta_audit_pending")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(waiting, 1, "the sealed row waits for the chainer");
        assert_eq!(store.chain_written_audit().await.unwrap(), 1);
    }
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM meta.meta_audit_pending")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(waiting, 0, "chained rows leave the waiting list");
    let report = store.verify_audit(Some("acme")).await.unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(report.rows, rows);
    // The statistics reach the view within a second or so of each backend's last transaction.
    let mut updates = (0, 0);
    for _ in 0..100 {
        let (all, hot): (i64, i64) = sqlx::query_as(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables \
             WHERE relid = 'meta.meta_audit'::regclass",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        updates = (all, hot);
        if all >= i64::try_from(rows).unwrap() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(updates, (20, 20), "(updates, of which HOT)");
}
