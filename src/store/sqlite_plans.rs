//! The statements every request runs look rows up by key on SQLite too: `EXPLAIN QUERY PLAN`
//! of each on a migrated file with rows, where any full `SCAN` of a table fails the test (a
//! million people would make such a statement a million times slower).

use super::SqliteStore;
use crate::store::{pending, sql};

/// Each request statement, named for the failure message.
fn request_statements() -> Vec<(&'static str, &'static str)> {
    let mut all = vec![
        ("FIND_SESSION", sql::FIND_SESSION),
        ("TAKE_UPSTREAM_LOGIN", sql::TAKE_UPSTREAM_LOGIN),
        ("TOKEN_HOLDER_CACHEABLE", sql::TOKEN_HOLDER_CACHEABLE),
        ("CHANGE_FEED_READ", crate::store::change_feed::READ),
        ("FIND_REFRESH_GRANT", sql::FIND_REFRESH_GRANT),
        ("FIND_REFRESH_HOLDER", sql::FIND_REFRESH_HOLDER),
        ("POLL_DEVICE", pending::POLL_DEVICE),
        ("ENTER_USER_CODE", pending::ENTER_USER_CODE),
        ("TAKE_PUSHED", pending::TAKE_PUSHED),
        ("ACCESS_TOKEN_REVOKED", pending::ACCESS_TOKEN_REVOKED),
    ];
    all.extend(
        SqliteStore::SPEND_AUTH_CODE
            .iter()
            .map(|s| ("SPEND_AUTH_CODE", *s)),
    );
    all.extend(
        SqliteStore::REDEEM_AUTH_CODE
            .iter()
            .map(|s| ("REDEEM_AUTH_CODE", *s)),
    );
    all.extend(SqliteStore::ROTATE.iter().map(|s| ("ROTATE", *s)));
    all.extend(
        SqliteStore::ROTATE_FRESH
            .iter()
            .map(|s| ("ROTATE_FRESH", *s)),
    );
    all
}

/// A few hundred people with a session, a grant and a refresh token each.
const ROWS: &str = "\
    WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 300) \
    INSERT INTO users (id, username, created_at, updated_at) SELECT 'u' || n, 'p' || n, 0, 0 FROM k; \
    WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 300) \
    INSERT INTO sessions (id, secret_hash, user_id, auth_time, created_at, expires_at, last_seen_at) \
        SELECT 's' || n, 'h' || n, 'u' || n, 0, 0, 10, 0 FROM k; \
    WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 300) \
    INSERT INTO grants (id, client_id, user_id, session_id, scopes, auth_time, created_at, expires_at) \
        SELECT 'g' || n, 'wiki', 'u' || n, 's' || n, 'openid', 0, 0, 10 FROM k; \
    WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 300) \
    INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
        SELECT 'r' || n, 'g' || n, 0, 10 FROM k; \
    ANALYZE;";

#[test]
fn request_statements_look_up_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plans.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::connect(&format!("sqlite://{}", file.display()), 2)
            .await
            .unwrap();
        store.run_migrations().await.unwrap();
    });
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch(ROWS).unwrap();
    let mut scans = Vec::new();
    for (label, statement) in request_statements() {
        let mut explain = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
            .unwrap_or_else(|error| panic!("{label} does not prepare: {error}"));
        // The plan does not depend on the values bound, only on their being there.
        let unbound = std::iter::repeat_n(rusqlite::types::Null, explain.parameter_count());
        let plan: Vec<String> = explain
            .query_map(rusqlite::params_from_iter(unbound), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // `cargo test --lib sqlite_plans -- --nocapture` lists them (BENCHMARKS.md quotes it).
        println!("{label}:\n  {}", plan.join("\n  "));
        // `SCAN k` would be a counter; a table scan names the table (or its alias).
        if plan
            .iter()
            .any(|step| step.starts_with("SCAN ") && !step.starts_with("SCAN CONSTANT ROW"))
        {
            scans.push(format!("{label}:\n  {}", plan.join("\n  ")));
        }
    }
    assert!(
        scans.is_empty(),
        "request statements scan a table:\n{}",
        scans.join("\n\n")
    );
}
