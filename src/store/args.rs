//! Values bound to the shared SQL in one form both drivers take: sqlx's (Postgres, and SQLite's
//! bulk work) and rusqlite's (SQLite's per-request statements, `direct.rs`). Each operation
//! lists its arguments once, in `shared.rs`, whichever driver runs it.

use super::to_unix;
use time::OffsetDateTime;

/// One bound value, in the column kinds the schema uses; `$N` in the SQL is the `N`-th.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Arg<'a> {
    /// `TEXT`.
    Text(&'a str),
    /// Nullable `TEXT`.
    OptText(Option<&'a str>),
    /// An integer (times are Unix seconds).
    Int(i64),
    /// A nullable integer.
    OptInt(Option<i64>),
    /// A `BOOLEAN` (SQLite stores 0 or 1).
    Flag(bool),
    /// Nullable bytes (`BLOB`/`BYTEA`).
    OptBlob(Option<&'a [u8]>),
}

impl Arg<'_> {
    /// A time, as the Unix seconds every time column holds.
    pub(super) fn time(at: OffsetDateTime) -> Self {
        Arg::Int(to_unix(at))
    }

    /// A nullable time.
    pub(super) fn opt_time(at: Option<OffsetDateTime>) -> Self {
        Arg::OptInt(at.map(to_unix))
    }
}
