//! A throwaway database on the cluster named by `GUILDGATE_TEST_POSTGRES_URL` (as `.ci/run`
//! sets it), for the Postgres store's own tests.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// A database created for one test and dropped by [`ThrowawayDb::drop_database`].
pub struct ThrowawayDb {
    admin: PgConnection,
    name: String,
    /// Its URL.
    pub url: String,
}

impl ThrowawayDb {
    /// A new empty database, or `None` (with a line saying so) when no cluster is named.
    pub async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("GUILDGATE_TEST_POSTGRES_URL") else {
            eprintln!("skipped: GUILDGATE_TEST_POSTGRES_URL is not set (.ci/run sets it)");
            return None;
        };
        let name = format!("guildgate_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap();
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        let url = match admin_url.rsplit_once('/') {
            Some((cluster, _)) => format!("{cluster}/{name}"),
            None => panic!("GUILDGATE_TEST_POSTGRES_URL has no database part"),
        };
        Some(Self { admin, name, url })
    }

    /// Drops the database, closing whatever is still connected to it.
    pub async fn drop_database(mut self) {
        self.admin
            .execute(AssertSqlSafe(format!(
                "DROP DATABASE {} WITH (FORCE)",
                self.name
            )))
            .await
            .unwrap();
    }
}
