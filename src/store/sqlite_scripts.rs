//! SQLite's own writes of several statements: where Postgres sends one statement
//! (data-modifying CTEs), SQLite runs these scripts in one transaction on the writer's thread
//! (`in_one_trip`), each statement's condition saying whether the one before it wrote.

use super::SqliteStore;

/// The code `$1` with its person, when the last write changed one row (its spend, or the grant
/// written for it): SQLite's `RETURNING` cannot name another table.
const SPENT_CODE_WITH_PERSON: &str = concat!(
    "SELECT ",
    crate::store::sql::spent_code_columns!(),
    " FROM auth_codes c JOIN users u ON u.id = c.user_id \
    WHERE c.code_hash = $1 AND changes() = 1"
);

impl SqliteStore {
    /// A rotation in one trip to the writer's thread (each statement sent separately was a
    /// thread hop of its own): spend `$1` (client `$2`, at `$3`), store `$4` (idle expiry `$5`)
    /// for the same grant when the spend changed a row, and read that grant.
    pub(in crate::store) const ROTATE: &[&str] = &[
        crate::store::sql::spend_refresh_token!(),
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
        SELECT $4, grant_id, $3, $5 FROM refresh_tokens WHERE token_hash = $1 AND changes() = 1",
        concat!(
            "SELECT ",
            crate::store::sql::grant_columns!(),
            " FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id WHERE rt.token_hash = $4"
        ),
    ];

    /// A refresh in one trip to the writer's thread (see `sql::spend_fresh_refresh_token!`):
    /// spend `$1`, store `$4` with the idle expiry `$5` capped at the grant's end when the spend
    /// changed a row, and read the grant, its person and their snapshot.
    pub(in crate::store) const ROTATE_FRESH: &[&str] = &[
        crate::store::sql::spend_fresh_refresh_token!(),
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
        SELECT $4, rt.grant_id, $3, MIN($5, g.expires_at) FROM refresh_tokens rt \
        JOIN grants g ON g.id = rt.grant_id WHERE rt.token_hash = $1 AND changes() = 1",
        concat!(
            "SELECT ",
            crate::store::sql::fresh_rotation_columns!(),
            " FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id \
            JOIN users u ON u.id = g.user_id WHERE rt.token_hash = $4"
        ),
    ];

    /// A new grant and its first refresh token (`$10`, idle expiry `$11`; both NULL for none).
    pub(in crate::store) const INSERT_GRANT: &[&str] = &[
        crate::store::sql::insert_grant!(),
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
        SELECT $10, $1, $7, $11 WHERE $10 IS NOT NULL",
    ];

    /// A completed sign-in's person (see `sql::save_sign_in!`) and new session.
    pub(in crate::store) const SAVE_SIGN_IN: &[&str] = &[
        crate::store::sql::save_sign_in!(),
        crate::store::sql::insert_signed_in_session!(),
    ];

    /// [`Self::SAVE_SIGN_IN`] with the code of the app the sign-in was for and that client's
    /// place in the session.
    pub(in crate::store) const SAVE_SIGN_IN_WITH_CODE: &[&str] = &[
        crate::store::sql::save_sign_in!(),
        crate::store::sql::insert_signed_in_session!(),
        crate::store::sql::add_signed_in_code_client!(),
        crate::store::sql::insert_signed_in_code!(),
    ];

    /// Spends an authorization code and reads it back with its person (SQLite's RETURNING
    /// cannot name another table); the SELECT finds the row only when the UPDATE changed it.
    pub(in crate::store) const SPEND_AUTH_CODE: &[&str] = &[
        crate::store::sql::spend_auth_code!(),
        SPENT_CODE_WITH_PERSON,
    ];

    /// A code's redemption in one transaction (see Postgres). `changes()` is the count of the
    /// last write: the spend for the grant, the grant for the rest (a `SELECT` leaves it).
    pub(in crate::store) const REDEEM_AUTH_CODE: &[&str] = &[
        crate::store::sql::spend_checked_auth_code!(),
        concat!(
            crate::store::sql::grant_of_spent_code!(),
            " FROM auth_codes c WHERE c.code_hash = $1 AND changes() = 1"
        ),
        SPENT_CODE_WITH_PERSON,
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
        SELECT $10, c.grant_id, $2, $11 FROM auth_codes c \
        WHERE c.code_hash = $1 AND $10 IS NOT NULL AND changes() = 1",
    ];

    /// An authorization code and its client's place in the session.
    pub(in crate::store) const INSERT_AUTH_CODE: &[&str] = &[
        crate::store::sql::add_code_client!(),
        crate::store::sql::insert_auth_code!(),
    ];
}
