//! Postgres's own statements for the writes SQLite runs as scripts: each one statement of
//! data-modifying CTEs, so one round trip and one implicit transaction.

use super::PgStore;

/// The code spent by the statement's `c` with its person, as `SpentCode` reads them.
macro_rules! spent_code_with_person {
    () => {
        concat!(
            "SELECT ",
            crate::store::sql::spent_code_columns!(),
            " FROM c JOIN users u ON u.id = c.user_id"
        )
    };
}

impl PgStore {
    /// A rotation in one round trip and one implicit transaction: spend `$1` (client `$2`, at
    /// `$3`), store `$4` (idle expiry `$5`) for the same grant, and read that grant. A second
    /// presentation racing this one waits for the row lock, re-checks `used_at IS NULL` after
    /// the commit (READ COMMITTED) and spends nothing.
    pub(in crate::store) const ROTATE: &str = concat!(
        "WITH spent AS (",
        crate::store::sql::spend_refresh_token!(),
        " RETURNING grant_id), \
        fresh AS (INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
            SELECT $4, grant_id, $3, $5 FROM spent RETURNING grant_id) \
        SELECT ",
        crate::store::sql::grant_columns!(),
        " FROM grants g JOIN fresh ON g.id = fresh.grant_id"
    );

    /// A refresh in one statement (see `sql::spend_fresh_refresh_token!`): spend `$1`, store
    /// `$4` with the idle expiry `$5` capped at the grant's end, and read the grant, its person
    /// and their snapshot.
    pub(in crate::store) const ROTATE_FRESH: &str = concat!(
        "WITH spent AS (",
        crate::store::sql::spend_fresh_refresh_token!(),
        " RETURNING grant_id), \
        fresh AS (INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
            SELECT $4, spent.grant_id, $3, LEAST($5, g.expires_at) \
            FROM spent JOIN grants g ON g.id = spent.grant_id RETURNING grant_id) \
        SELECT ",
        crate::store::sql::fresh_rotation_columns!(),
        " FROM grants g JOIN fresh ON g.id = fresh.grant_id JOIN users u ON u.id = g.user_id"
    );

    /// A new grant and its first refresh token (`$10`, idle expiry `$11`; both NULL for none) in
    /// one statement, so one round trip and one implicit transaction.
    pub(in crate::store) const INSERT_GRANT: &str = concat!(
        "WITH g AS (",
        crate::store::sql::insert_grant!(),
        " RETURNING id) \
        INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
        SELECT $10, g.id, $7, $11 FROM g WHERE $10 IS NOT NULL"
    );

    /// A completed sign-in's person (see `sql::save_sign_in!`) and new session, in one
    /// statement (the session's foreign key is checked at its end, with the person written).
    pub(in crate::store) const SAVE_SIGN_IN: &str = concat!(
        "WITH person AS (",
        crate::store::sql::save_sign_in!(),
        " RETURNING id) ",
        crate::store::sql::insert_signed_in_session!()
    );

    /// [`Self::SAVE_SIGN_IN`] with the code of the app the sign-in was for and that client's
    /// place in the session, in one statement (the foreign keys are checked at its end).
    pub(in crate::store) const SAVE_SIGN_IN_WITH_CODE: &str = concat!(
        "WITH person AS (",
        crate::store::sql::save_sign_in!(),
        " RETURNING id), session AS (",
        crate::store::sql::insert_signed_in_session!(),
        " RETURNING id), seen AS (",
        crate::store::sql::add_signed_in_code_client!(),
        ") ",
        crate::store::sql::insert_signed_in_code!()
    );

    /// Spends an authorization code and reads it with its person, in one statement.
    pub(in crate::store) const SPEND_AUTH_CODE: &str = concat!(
        "WITH c AS (",
        crate::store::sql::spend_auth_code!(),
        " RETURNING *) ",
        spent_code_with_person!()
    );

    /// A code's redemption in one statement: spend `$1` if every check holds (see
    /// `sql::spend_checked_auth_code!`), write its grant and first refresh token (`$10`, idle
    /// expiry `$11`; both NULL for none), and read the code with its person.
    pub(in crate::store) const REDEEM_AUTH_CODE: &str = concat!(
        "WITH c AS (",
        crate::store::sql::spend_checked_auth_code!(),
        " RETURNING *), g AS (",
        crate::store::sql::grant_of_spent_code!(),
        " FROM c RETURNING id), \
        r AS (INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
            SELECT $10, g.id, $2, $11 FROM g WHERE $10::text IS NOT NULL) \
        ",
        spent_code_with_person!()
    );

    /// An authorization code and its client's place in the session, in one statement.
    pub(in crate::store) const INSERT_AUTH_CODE: &str = concat!(
        "WITH seen AS (",
        crate::store::sql::add_code_client!(),
        ") ",
        crate::store::sql::insert_auth_code!()
    );
}
