//! SQLite backend: the shared conformance suite, the drift test of the row types against the live
//! catalog, and the database-enforced rules.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed step is a failed test"
)]

use std::sync::Arc;

use metaengine_store::Store;
use metaengine_store::rows::all_tables;
use metaengine_store_sqlite::SqliteStore;
use sqlx::Row;

/// A fresh migrated database in its own temporary directory (removed when the guard drops).
async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/meta.db", dir.path().display());
    let store = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 6);
    (dir, Arc::new(store))
}

metaengine_store::conformance_tests!(fresh());

#[tokio::test]
async fn row_types_match_the_migrated_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&format!("sqlite://{}/m.db", dir.path().display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    for (_, table, columns) in all_tables() {
        let live = sqlx::query(&format!("PRAGMA table_info({table})"))
            .fetch_all(store.sqlite_pool().unwrap())
            .await
            .unwrap();
        assert!(!live.is_empty(), "table {table} missing");
        let live: Vec<(String, String, bool)> = live
            .iter()
            .map(|r| {
                (
                    r.get("name"),
                    r.get("type"),
                    r.get::<i64, _>("notnull") == 0,
                )
            })
            .collect();
        let declared: Vec<(String, String, bool)> = columns
            .iter()
            .map(|c| {
                (
                    c.name.to_owned(),
                    c.kind.sqlite_type().to_owned(),
                    c.nullable,
                )
            })
            .collect();
        assert_eq!(
            live, declared,
            "table {table}: migration (left) vs Rust row type (right)"
        );
    }
}

#[tokio::test]
async fn the_database_allows_one_active_version_per_entity() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&format!("sqlite://{}/m.db", dir.path().display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let p = store.sqlite_pool().unwrap();
    sqlx::query("INSERT INTO meta_entities (id, name, created_by) VALUES ('e', 'Invoice', 'x')")
        .execute(p)
        .await
        .unwrap();
    for (id, v) in [("a", "v1"), ("b", "v2")] {
        sqlx::query(
            "INSERT INTO meta_versions (id, entity_name, version, schema, is_active, created_by) \
             VALUES ($1, 'Invoice', $2, '{}', 1, 'x')",
        )
        .bind(id)
        .bind(v)
        .execute(p)
        .await
        .map(|_| ())
        .unwrap_or_else(|e| {
            assert_eq!(
                v, "v2",
                "only the second active version may be refused: {e}"
            );
        });
    }
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM meta_versions WHERE is_active")
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(active, 1);
}

struct SqliteRaw(sqlx::SqlitePool);

#[async_trait::async_trait]
impl metaengine_store::testkit::tables::RawTables for SqliteRaw {
    async fn columns(&self, table: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
            .bind(table)
            .fetch_all(&self.0)
            .await
            .unwrap()
    }

    async fn insert_invoice(&self, number: &str, total: &str) {
        sqlx::query(
            "INSERT INTO ent_invoice (tenant_id, realm_id, id, created_at, updated_at, \
             created_by, updated_by, invoice_number, total_amount) \
             VALUES ('t1', 'r1', $1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', \
             'u', 'u', $2, $3)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(number)
        .bind(total)
        .execute(&self.0)
        .await
        .unwrap();
    }

    async fn set_notes(&self, number: &str, notes: &str) {
        sqlx::query("UPDATE ent_invoice SET notes = $2 WHERE invoice_number = $1")
            .bind(number)
            .bind(notes)
            .execute(&self.0)
            .await
            .unwrap();
    }

    async fn notes(&self, number: &str) -> Option<String> {
        sqlx::query_scalar("SELECT notes FROM ent_invoice WHERE invoice_number = $1")
            .bind(number)
            .fetch_one(&self.0)
            .await
            .unwrap()
    }

    async fn total(&self, number: &str) -> String {
        sqlx::query_scalar("SELECT total_amount FROM ent_invoice WHERE invoice_number = $1")
            .bind(number)
            .fetch_one(&self.0)
            .await
            .unwrap()
    }

    async fn count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM ent_invoice")
            .fetch_one(&self.0)
            .await
            .unwrap()
    }
}

async fn fresh_with_raw() -> (
    tempfile::TempDir,
    Arc<dyn Store>,
    Arc<dyn metaengine_store::testkit::tables::RawTables>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&format!("sqlite://{}/t.db", dir.path().display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let raw = Arc::new(SqliteRaw(store.sqlite_pool().unwrap().clone()));
    (dir, Arc::new(store), raw)
}

metaengine_store::table_conformance_tests!(fresh_with_raw());
metaengine_store::record_conformance_tests!(fresh());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_work_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/meta.db", dir.path().display());
    let store = SqliteStore::connect_with_pool_size(&url, 1).await.unwrap();
    store.migrate().await.unwrap();
    metaengine_store::testkit::records::cut_off_work_leaves_no_trace(Arc::new(store)).await;
}

/// Runs SQL on the test database, as a person with database access would.
fn exec_on(pool: sqlx::SqlitePool) -> metaengine_store::testkit::chain::Exec {
    Arc::new(move |sql: String| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query(&sql).execute(&pool).await.unwrap();
        })
    })
}

#[tokio::test]
async fn audit_tampering_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&format!("sqlite://{}/m.db", dir.path().display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let exec = exec_on(store.sqlite_pool().unwrap().clone());
    metaengine_store::testkit::chain::audit_tampering_is_found(Arc::new(store), exec, "meta_audit")
        .await;
}

#[tokio::test]
async fn sealed_rows_need_the_writers_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/m.db", dir.path().display());
    let open = |key: &'static [u8]| {
        let url = url.clone();
        async move {
            let store = SqliteStore::connect(&url)
                .await
                .unwrap()
                .with_audit_key(key);
            store.migrate().await.unwrap();
            Arc::new(store)
        }
    };
    let writer = open(b"key one").await;
    let (same, other) = (open(b"key one").await, open(b"key two").await);
    metaengine_store::testkit::chain::sealed_rows_need_the_writers_key(writer.clone(), same, other)
        .await;
    // SQLite updates rows in place: the chainer has nothing to vacuum.
    assert_eq!(writer.vacuum_audit().await.unwrap(), None);
    assert_eq!(writer.audit_dead_rows().await.unwrap(), None);
}

#[tokio::test]
async fn the_chain_migration_chains_the_rows_already_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&format!("sqlite://{}/m.db", dir.path().display()))
        .await
        .unwrap();
    let pool = store.sqlite_pool().unwrap().clone();
    let before_chain = sqlx::migrate::Migrator {
        migrations: metaengine_store_sqlite::MIGRATOR.migrations[..2]
            .to_vec()
            .into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before_chain.run(&pool).await.unwrap();
    metaengine_store::testkit::chain::rows_before_the_chain_are_chained(
        Arc::new(store),
        exec_on(pool),
        "meta_audit",
    )
    .await;
}
