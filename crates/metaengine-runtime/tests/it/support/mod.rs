//! Fresh, migrated databases for one test each; the guard removes them when dropped.

use std::sync::Arc;

use metaengine_store::Store;
use metaengine_store_postgres::PostgresStore;
use metaengine_store_postgres::testing::TestDatabase;
use metaengine_store_sqlite::SqliteStore;

/// The URL of the test database file in `dir` (to open it a second time, as another process).
pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}/test.db", dir.display())
}

/// A SQLite file in its own temporary directory.
pub async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&sqlite_url(dir.path())).await.unwrap();
    store.migrate().await.unwrap();
    (dir, Arc::new(store))
}

/// A PostgreSQL database of its own (fails loudly when the server is not reachable).
pub async fn postgres() -> (TestDatabase, Arc<dyn Store>) {
    let db = TestDatabase::create().await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    (db, Arc::new(store))
}
