//! Driver errors mapped once into [`StoreError`], shared by both backends.

use super::StoreError;

/// A unique or primary-key violation means the caller tried to write something that exists
/// (a reused id, or a grant a code replay already claimed); everything else is the backend's.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            // The driver's message names the constraint but never the values, so it is safe to
            // carry; Postgres puts the offending key only in `detail`, which we do not copy.
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            _ => StoreError::Backend(error),
        }
    }
}
