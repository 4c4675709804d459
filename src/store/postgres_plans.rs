//! The statements every refresh and `/userinfo` run look rows up by key on Postgres, even on a
//! young database whose tables have rows but no statistics yet (autovacuum has not analyzed
//! them): there the planner once chose to scan every live session on each of them. Runs on the
//! cluster named by `GUILDGATE_TEST_POSTGRES_URL` (as `.ci/run` sets it), on a throwaway
//! database.

use super::PgStore;
use super::test_db::ThrowawayDb;
use crate::store::{pending, sql};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, Row};

/// Each request statement, named for the failure message.
fn request_statements() -> [(&'static str, &'static str); 13] {
    [
        ("TOKEN_HOLDER_CACHEABLE", sql::TOKEN_HOLDER_CACHEABLE),
        ("CHANGE_FEED_READ", super::super::change_feed::READ),
        ("FIND_REFRESH_GRANT", sql::FIND_REFRESH_GRANT),
        ("FIND_REFRESH_HOLDER", sql::FIND_REFRESH_HOLDER),
        ("SPEND_AUTH_CODE", PgStore::SPEND_AUTH_CODE),
        ("REDEEM_AUTH_CODE", PgStore::REDEEM_AUTH_CODE),
        ("ROTATE", PgStore::ROTATE),
        ("ROTATE_FRESH", PgStore::ROTATE_FRESH),
        ("POLL_DEVICE", pending::POLL_DEVICE),
        ("ENTER_USER_CODE", pending::ENTER_USER_CODE),
        ("FIND_DEVICE", pending::FIND_DEVICE),
        ("TAKE_PUSHED", pending::TAKE_PUSHED),
        ("ACCESS_TOKEN_REVOKED", pending::ACCESS_TOKEN_REVOKED),
    ]
}

/// A few hundred people, each with a session, a grant, a refresh token and a revoked access
/// token, written without `ANALYZE`.
const ROWS: &str = "\
    INSERT INTO users (id, username, created_at, updated_at) \
        SELECT 'u' || n, 'person' || n, 0, 0 FROM generate_series(1, 300) n; \
    INSERT INTO sessions (id, secret_hash, user_id, auth_time, created_at, expires_at, last_seen_at) \
        SELECT 's' || n, 'h' || n, 'u' || n, 0, 0, 10, 0 FROM generate_series(1, 300) n; \
    INSERT INTO grants (id, client_id, user_id, session_id, scopes, auth_time, created_at, expires_at) \
        SELECT 'g' || n, 'wiki', 'u' || n, 's' || n, 'openid', 0, 0, 10 FROM generate_series(1, 300) n; \
    INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
        SELECT 'r' || n, 'g' || n, 0, 10 FROM generate_series(1, 300) n; \
    INSERT INTO revoked_access_tokens (jti, expires_at) \
        SELECT 'j' || n, 10 FROM generate_series(1, 300) n; \
    INSERT INTO device_authorizations (device_code_hash, user_code_hash, client_id, scopes, \
        status, interval_secs, next_poll_at, created_at, expires_at) \
        SELECT 'd' || n, 'c' || n, 'cli', 'openid', 'pending', 5, 0, 0, 10 \
        FROM generate_series(1, 300) n; \
    INSERT INTO pushed_requests (request_uri_hash, client_id, request, created_at, expires_at) \
        SELECT 'p' || n, 'wiki', '[]', 0, 10 FROM generate_series(1, 300) n; \
    INSERT INTO changes (kind, key, at) SELECT 'grant', 'g' || n, 0 FROM generate_series(1, 300) n;";

/// The highest `$N` in `statement`.
fn parameters(statement: &str) -> usize {
    statement
        .split('$')
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn request_statements_look_up_keys_on_a_young_database() {
    let Some(db) = ThrowawayDb::create().await else {
        return;
    };
    let url = db.url.clone();
    let store = PgStore::connect(&url, 2).await.unwrap();
    store.run_migrations().await.unwrap();
    drop(store);

    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(ROWS).execute(&mut conn).await.unwrap();
    // The plan any parameters get, which is the one a prepared statement settles on.
    conn.execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let mut scans = Vec::new();
    for (label, statement) in request_statements() {
        conn.execute(AssertSqlSafe(format!("PREPARE s AS {statement}")))
            .await
            .unwrap();
        let nulls = vec!["NULL"; parameters(statement)].join(", ");
        let plan: Vec<String> = sqlx::query(AssertSqlSafe(format!("EXPLAIN EXECUTE s({nulls})")))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
        if plan
            .iter()
            .any(|line| line.contains("Seq Scan") || line.contains("hashed SubPlan"))
        {
            scans.push(format!("{label}:\n{}", plan.join("\n")));
        }
        conn.execute("DEALLOCATE s").await.unwrap();
    }
    conn.close().await.unwrap();
    db.drop_database().await;
    assert!(
        scans.is_empty(),
        "request statements scan a table:\n{}",
        scans.join("\n\n")
    );
}
