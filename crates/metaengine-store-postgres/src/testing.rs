//! Throwaway PostgreSQL databases for tests: each test gets its own database, created on the
//! server named by `METAENGINE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and dropped when the handle is dropped, so tests run in parallel and leave nothing behind.
//! There is no skipping: if the server is not reachable, the test fails and says so.

use sqlx::{Connection, PgConnection};

/// The server tests use unless `METAENGINE_TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database that exists for the lifetime of this value.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

fn admin_url() -> String {
    std::env::var("METAENGINE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_owned())
}

fn with_database(url: &str, name: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => format!("{url}/{name}"),
    }
}

impl TestDatabase {
    /// Creates a fresh, empty database.
    ///
    /// # Panics
    /// When PostgreSQL is not reachable: tests must fail loudly, never skip.
    pub async fn create() -> Self {
        Self::create_with("").await
    }

    /// Creates a fresh, empty database whose default collation is ICU's root locale (`und`),
    /// which orders text by language rules rather than by bytes (`'a' < 'B'`, unlike `C`), to
    /// prove that results do not depend on the server's collation.
    pub async fn create_with_language_collation() -> Self {
        Self::create_with(
            " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C.UTF-8'",
        )
        .await
    }

    #[expect(
        clippy::panic,
        reason = "test fixture: an unreachable server must fail the test"
    )]
    async fn create_with(options: &str) -> Self {
        let admin_url = admin_url();
        let name = format!("metaengine_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = match PgConnection::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(e) => panic!(
                "PostgreSQL is not reachable at {admin_url} ({e}); start it (./scripts/test does) \
                 or set METAENGINE_TEST_DATABASE_URL"
            ),
        };
        if let Err(e) = sqlx::raw_sql(&format!("CREATE DATABASE {name}{options}"))
            .execute(&mut conn)
            .await
        {
            panic!("cannot create test database {name}: {e}");
        }
        let url = with_database(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
        }
    }

    /// URL of the test database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block on itself: use a fresh thread
        // with its own small runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
