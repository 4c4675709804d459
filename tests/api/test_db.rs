//! Fresh, empty databases for tests: a SQLite file in a temp folder, or a throwaway Postgres database.
//!
//! SQLite always runs. Postgres runs when `GUILDGATE_TEST_POSTGRES_URL` names an admin URL
//! (e.g. `postgres://postgres@127.0.0.1:5432/postgres`); if it is set but unreachable, tests fail
//! rather than skip, so CI cannot go green without having tested Postgres.
//!
//! Each Postgres test gets its own database `guildgate_test_<uuid>`, dropped (best effort, with
//! `FORCE`) when the [`TestDb`] is dropped, and kept, with its name printed, when the test failed.

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tempfile::TempDir;

/// The environment variable holding the Postgres admin URL.
pub const POSTGRES_URL_VAR: &str = "GUILDGATE_TEST_POSTGRES_URL";

/// A store backend to run a test against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the cluster named by `GUILDGATE_TEST_POSTGRES_URL`.
    Postgres,
}

/// Every backend this run can test: SQLite, plus Postgres when its URL is configured.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if std::env::var_os(POSTGRES_URL_VAR).is_some() {
        all.push(Backend::Postgres);
    }
    all
}

/// An empty database that lives as long as this value.
pub struct TestDb {
    /// The URL to hand to `guildgate::store::connect` or to `database.url`.
    pub url: String,
    /// Keeps the SQLite folder alive; `None` for Postgres.
    _dir: Option<TempDir>,
    /// For Postgres: the admin URL and database name to drop afterwards.
    postgres: Option<(String, String)>,
}

/// Creates an empty database (no migrations applied) for `backend`.
pub async fn fresh_database(backend: Backend) -> TestDb {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("cannot create a temp folder for SQLite");
            let url = format!("sqlite://{}", dir.path().join("guildgate.db").display());
            TestDb {
                url,
                _dir: Some(dir),
                postgres: None,
            }
        }
        Backend::Postgres => {
            let admin = std::env::var(POSTGRES_URL_VAR)
                .unwrap_or_else(|_| panic!("{POSTGRES_URL_VAR} must be set to test Postgres"));
            let name = format!("guildgate_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = admin_connection(&admin).await;
            sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
            let _ = conn.close().await;
            let mut url = url::Url::parse(&admin).expect("admin URL was just used to connect");
            url.set_path(&format!("/{name}"));
            TestDb {
                url: url.to_string(),
                _dir: None,
                postgres: Some((admin, name)),
            }
        }
    }
}

/// A SQLite database holding a copy of `file` (a backup being restored), in a fresh folder.
pub fn sqlite_copy_of(file: &std::path::Path) -> TestDb {
    let dir = tempfile::tempdir().expect("cannot create a temp folder for SQLite");
    let path = dir.path().join("guildgate.db");
    std::fs::copy(file, &path).expect("the backup copies");
    TestDb {
        url: format!("sqlite://{}", path.display()),
        _dir: Some(dir),
        postgres: None,
    }
}

async fn admin_connection(admin: &str) -> PgConnection {
    PgConnection::connect(admin).await.unwrap_or_else(|e| {
        panic!(
            "{POSTGRES_URL_VAR} is set but Postgres at {} is unreachable: {e}. \
             Start it, or unset the variable to test SQLite only.",
            guildgate::store::redact_url(admin)
        )
    })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        if std::thread::panicking() {
            eprintln!("kept Postgres test database {name} for inspection");
            return;
        }
        // Drop cannot await, and we may be inside a runtime: use a short-lived one on a thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                let sql = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        // Best effort: CI clusters are throwaway, so a leftover database is harmless.
        let _ = dropped;
    }
}
