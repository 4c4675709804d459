//! How a row's columns are read, whichever driver read the row: sqlx's rows (Postgres, and
//! SQLite's bulk work) and rusqlite's (`direct.rs`, as [`DirectRow`]). The records' decoders
//! (`rows.rs`) are written once against [`Columns`].

use super::Unreadable;
use super::from_unix;
use super::rows::Stored;
use crate::domain::TokenHash;
use sqlx::{ColumnIndex, Decode, Row, Type};
use time::OffsetDateTime;

/// The decode error that carries an [`Unreadable`] out of `FromRow` (see `errors.rs`).
pub(super) fn unreadable(
    table: &'static str,
    column: &'static str,
    expected: &'static str,
) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(Unreadable {
            table,
            column,
            expected,
        }),
    }
}

/// Typed access to the column kinds our schema uses, by column name.
///
/// Implemented for every row type whose engine decodes `TEXT`, `BIGINT`/`INTEGER` and `BOOLEAN`
/// (SQLite's and Postgres's), so the decoders below need only this one bound.
pub(super) trait Columns {
    /// A `TEXT NOT NULL` column.
    fn text(&self, name: &str) -> Result<String, sqlx::Error>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, name: &str) -> Result<Option<String>, sqlx::Error>;
    /// A `NOT NULL` integer column.
    fn int(&self, name: &str) -> Result<i64, sqlx::Error>;
    /// A nullable integer column.
    fn opt_int(&self, name: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A `BOOLEAN NOT NULL` column.
    fn flag(&self, name: &str) -> Result<bool, sqlx::Error>;

    /// A `NOT NULL` time column.
    fn time(&self, name: &str) -> Result<OffsetDateTime, sqlx::Error> {
        self.int(name).map(from_unix)
    }
    /// A nullable time column.
    fn opt_time(&self, name: &str) -> Result<Option<OffsetDateTime>, sqlx::Error> {
        Ok(self.opt_int(name)?.map(from_unix))
    }
    /// A stored SHA-256 (base64url text).
    fn hash(&self, name: &str) -> Result<TokenHash, sqlx::Error> {
        self.text(name).map(TokenHash::from_stored)
    }
    /// A `TEXT NOT NULL` column of `table` holding a [`Stored`] value.
    fn typed<T: Stored>(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<T, sqlx::Error> {
        let raw = self.text(column)?;
        T::read(&raw).ok_or_else(|| unreadable(table, column, T::EXPECTED))
    }
    /// A nullable `TEXT` column of `table` holding a [`Stored`] value.
    fn opt_typed<T: Stored>(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<Option<T>, sqlx::Error> {
        self.opt_text(column)?
            .map(|raw| T::read(&raw).ok_or_else(|| unreadable(table, column, T::EXPECTED)))
            .transpose()
    }
}

/// A record read from a row by column name, whichever driver read it (sqlx's rows and
/// rusqlite's both implement [`Columns`]).
pub(super) trait FromColumns: Sized {
    /// The record in `r`, or the first column that did not decode.
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error>;
}

/// A statement that returns no rows (a script's writes).
impl FromColumns for () {
    fn from_columns<R: Columns + ?Sized>(_: &R) -> Result<Self, sqlx::Error> {
        Ok(())
    }
}

/// A row rusqlite read (`direct.rs`), seen through [`Columns`].
pub(super) struct DirectRow<'a, 'r>(pub(super) &'a rusqlite::Row<'r>);

impl DirectRow<'_, '_> {
    /// A column by name, rusqlite's error carried as sqlx's decode error (the one error type
    /// [`Columns`] speaks).
    fn get<T: rusqlite::types::FromSql>(&self, name: &str) -> Result<T, sqlx::Error> {
        self.0.get(name).map_err(|error| sqlx::Error::ColumnDecode {
            index: name.to_owned(),
            source: Box::new(error),
        })
    }
}

impl Columns for DirectRow<'_, '_> {
    fn text(&self, name: &str) -> Result<String, sqlx::Error> {
        self.get(name)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        self.get(name)
    }
    fn int(&self, name: &str) -> Result<i64, sqlx::Error> {
        self.get(name)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, sqlx::Error> {
        self.get(name)
    }
    fn flag(&self, name: &str) -> Result<bool, sqlx::Error> {
        self.get(name)
    }
}

impl<R> Columns for R
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, name: &str) -> Result<String, sqlx::Error> {
        self.try_get(name)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(name)
    }
    fn int(&self, name: &str) -> Result<i64, sqlx::Error> {
        self.try_get(name)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(name)
    }
    fn flag(&self, name: &str) -> Result<bool, sqlx::Error> {
        self.try_get(name)
    }
}
