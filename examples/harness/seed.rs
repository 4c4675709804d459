//! Bulk seeding for the load benchmark: a million people (or any number) with what a signed-in
//! person leaves in the database (a live session, a grant under it with its refresh token, a
//! membership snapshot), written straight into the database in large statements (not through
//! HTTP), so that every path can be measured against a full database.

use sqlx::Connection;
use std::time::Instant;

/// What seeding did.
pub struct Seeded {
    /// How long it took.
    pub seconds: f64,
    /// The database's size after seeding, in bytes.
    pub bytes: u64,
    /// The database's size before seeding.
    pub bytes_before: u64,
}

/// Rows written per statement.
const CHUNK: u64 = 100_000;

/// Writes `people` seeded people (Discord ids from 200000000000000001, far from the fake
/// Discord's demo users) into `database` (a `sqlite://` file or a `postgres://`
/// database that guildgate has migrated), at `now` (Unix seconds), for client `client`.
pub async fn people(database: &str, people: u64, now: i64, client: &str) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let (bytes_before, bytes) = if database.starts_with("sqlite") {
        let path = database.trim_start_matches("sqlite://").to_owned();
        let size = || sqlite_size(&path);
        let before = size();
        seed_sqlite(database, people, now, client).await?;
        (before, size())
    } else {
        let mut conn = sqlx::PgConnection::connect(database).await?;
        let before = pg_size(&mut conn).await?;
        seed_postgres(&mut conn, people, now, client).await?;
        sqlx::raw_sql("ANALYZE").execute(&mut conn).await?;
        (before, pg_size(&mut conn).await?)
    };
    Ok(Seeded {
        seconds: started.elapsed().as_secs_f64(),
        bytes,
        bytes_before,
    })
}

/// The statements of one chunk, `$1`..`$2` the people's numbers, `$3` now, `$4` the client.
/// Hashes are 43 characters like the real ones (base64url SHA-256), so indexes weigh what
/// they would.
const PG_CHUNK: &str = "\
    INSERT INTO users (id, username, global_name, email, email_verified, created_at, updated_at, \
        membership, membership_fetched_at) \
        SELECT (200000000000000000 + n)::text, 'person' || n, 'Person ' || n, \
        'person' || n || '@example.com', true, $3, $3, \
        '{\"guilds\":[\"812345678901234567\"],\"roles\":{\"812345678901234567\":[\"845611301132730378\"]}}', $3 \
        FROM generate_series($1::bigint, $2::bigint) n; \
    INSERT INTO sessions (id, secret_hash, user_id, auth_time, created_at, expires_at, last_seen_at, \
        user_agent, ip) \
        SELECT 'seed-s-' || n, substr(md5('s' || n) || md5('t' || n), 1, 43), \
        (200000000000000000 + n)::text, $3, $3, $3 + 43200, $3, 'Mozilla/5.0 (seed)', '10.0.0.1' \
        FROM generate_series($1::bigint, $2::bigint) n; \
    INSERT INTO grants (id, client_id, user_id, session_id, scopes, auth_time, created_at, expires_at) \
        SELECT 'seed-g-' || n, $4, (200000000000000000 + n)::text, 'seed-s-' || n, \
        'openid profile', $3, $3, $3 + 2592000 FROM generate_series($1::bigint, $2::bigint) n; \
    INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
        SELECT substr(md5('r' || n) || md5('q' || n), 1, 43), 'seed-g-' || n, $3, $3 + 604800 \
        FROM generate_series($1::bigint, $2::bigint) n";

async fn seed_postgres(
    conn: &mut sqlx::PgConnection,
    people: u64,
    now: i64,
    client: &str,
) -> anyhow::Result<()> {
    let mut first = 1;
    while first <= people {
        let last = (first + CHUNK - 1).min(people);
        // raw_sql takes no parameters: each chunk's numbers are written into the text.
        let text = PG_CHUNK
            .replace("$1::bigint", &first.to_string())
            .replace("$2::bigint", &last.to_string())
            .replace("$3", &now.to_string())
            .replace("$4", &format!("'{client}'"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(text))
            .execute(&mut *conn)
            .await?;
        first = last + 1;
    }
    Ok(())
}

async fn pg_size(conn: &mut sqlx::PgConnection) -> anyhow::Result<u64> {
    let (size,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(size).unwrap_or(0))
}

/// SQLite's counterpart of [`PG_CHUNK`] (`?1`..`?4`), rows from a recursive counter.
const SQLITE_CHUNK: [&str; 4] = [
    "WITH RECURSIVE k(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM k WHERE n < ?2) \
     INSERT INTO users (id, username, global_name, email, email_verified, created_at, updated_at, \
        membership, membership_fetched_at) \
     SELECT CAST(200000000000000000 + n AS TEXT), 'person' || n, 'Person ' || n, \
        'person' || n || '@example.com', 1, ?3, ?3, \
        '{\"guilds\":[\"812345678901234567\"],\"roles\":{\"812345678901234567\":[\"845611301132730378\"]}}', ?3 FROM k",
    "WITH RECURSIVE k(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM k WHERE n < ?2) \
     INSERT INTO sessions (id, secret_hash, user_id, auth_time, created_at, expires_at, \
        last_seen_at, user_agent, ip) \
     SELECT 'seed-s-' || n, substr(hex(randomblob(32)), 1, 43), \
        CAST(200000000000000000 + n AS TEXT), ?3, ?3, ?3 + 43200, ?3, 'Mozilla/5.0 (seed)', \
        '10.0.0.1' FROM k",
    "WITH RECURSIVE k(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM k WHERE n < ?2) \
     INSERT INTO grants (id, client_id, user_id, session_id, scopes, auth_time, created_at, \
        expires_at) \
     SELECT 'seed-g-' || n, ?4, CAST(200000000000000000 + n AS TEXT), 'seed-s-' || n, \
        'openid profile', ?3, ?3, ?3 + 2592000 FROM k",
    "WITH RECURSIVE k(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM k WHERE n < ?2) \
     INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
     SELECT substr(hex(randomblob(32)), 1, 43), 'seed-g-' || n, ?3, ?3 + 604800 FROM k",
];

async fn seed_sqlite(database: &str, people: u64, now: i64, client: &str) -> anyhow::Result<()> {
    let options: sqlx::sqlite::SqliteConnectOptions = database.parse()?;
    let mut conn = sqlx::SqliteConnection::connect_with(
        &options.busy_timeout(std::time::Duration::from_secs(30)),
    )
    .await?;
    let mut first = 1;
    while first <= people {
        let last = (first + CHUNK - 1).min(people);
        let mut tx = conn.begin().await?;
        for statement in SQLITE_CHUNK {
            sqlx::query(statement)
                .bind(i64::try_from(first)?)
                .bind(i64::try_from(last)?)
                .bind(now)
                .bind(client)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        first = last + 1;
    }
    sqlx::raw_sql("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    Ok(())
}

fn sqlite_size(path: &str) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{path}{suffix}")).ok())
        .map(|m| m.len())
        .sum()
}
