//! Test support shared by every crate's tests (a dev-dependency only): a fresh, migrated
//! database per test on SQLite and on PostgreSQL, and [`on_both_backends!`], which runs each
//! test case on both.
//!
//! PostgreSQL must be reachable (`METAENGINE_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`): a test fails loudly rather than skipping.
//! `./scripts/test` starts it when needed.

#![expect(
    clippy::unwrap_used,
    reason = "test fixtures: a database that cannot be set up fails the test"
)]

use std::sync::Arc;

use metaengine_store::Store;
use metaengine_store_postgres::PostgresStore;
use metaengine_store_postgres::testing::TestDatabase;
use metaengine_store_sqlite::SqliteStore;

/// A test's own database; dropping it removes the SQLite file or drops the PostgreSQL database.
pub struct TestDb {
    url: String,
    _keep: Keep,
}

enum Keep {
    Sqlite(#[expect(dead_code, reason = "held until the test ends")] tempfile::TempDir),
    Postgres(#[expect(dead_code, reason = "held until the test ends")] TestDatabase),
}

impl TestDb {
    /// The database URL (to open it a second time, as another process would).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A second store over the same database: another instance of the engine.
    pub async fn open_another(&self) -> Arc<dyn Store> {
        match self._keep {
            Keep::Sqlite(_) => Arc::new(SqliteStore::connect(&self.url).await.unwrap()),
            Keep::Postgres(_) => Arc::new(PostgresStore::connect(&self.url).await.unwrap()),
        }
    }
}

/// A fresh, migrated SQLite file in its own temporary directory.
pub async fn sqlite() -> (TestDb, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/test.db", dir.path().display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let db = TestDb {
        url,
        _keep: Keep::Sqlite(dir),
    };
    (db, Arc::new(store))
}

/// A fresh, migrated PostgreSQL database of its own.
pub async fn postgres() -> (TestDb, Arc<dyn Store>) {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let store = PostgresStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let db = TestDb {
        url,
        _keep: Keep::Postgres(database),
    };
    (db, Arc::new(store))
}

/// Inside a module: one `#[tokio::test]` per case, each calling `super::<case>(store)` with a
/// fresh store of `backend` (`sqlite` or `postgres`). For a module that holds more tests of its
/// own; otherwise [`on_both_backends!`].
#[macro_export]
macro_rules! backend_tests {
    ($backend:ident; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (_db, store) = $crate::$backend().await;
                super::$case(store).await;
            }
        )*
    };
}

/// Two modules, `sqlite` and `postgres`, with one test per case in each: every case
/// (`async fn case(store: Arc<dyn Store>)`) runs on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $crate::backend_tests!(sqlite; $($case),*);
        }
        mod postgres {
            $crate::backend_tests!(postgres; $($case),*);
        }
    };
}

/// The property tests' random cases: a small deterministic generator (SplitMix64), so the same
/// seed gives the same cases everywhere.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(i).unwrap()
    }
    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
