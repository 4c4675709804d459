//! `guildgate backup PATH`: a consistent copy of a live SQLite database, taken while guildgate
//! runs. `VACUUM INTO` reads one snapshot (a read transaction: in WAL mode the server's writes
//! go on meanwhile and are simply not in the copy) and writes it as a compact database file,
//! which is then checked and moved into place. Postgres is backed up with `pg_dump` (README,
//! "Backup and restore").

use rusqlite::{Connection, OpenFlags};
use sqlx::sqlite::SqliteConnectOptions;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// How long the copy waits for a write lock it never needs to be released (a checkpoint).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no backup was written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// `database.url` is not a SQLite URL.
    #[error(
        "guildgate backup copies a SQLite database; database.url ({0}) is Postgres: use pg_dump (README, \"Backup and restore\")"
    )]
    NotSqlite(String),
    /// The URL does not parse.
    #[error("database.url ({url}) is not a usable SQLite URL: {cause}")]
    Url {
        /// The URL, password-free by construction (SQLite URLs have none).
        url: String,
        /// Why.
        cause: String,
    },
    /// There is no database file to copy.
    #[error("there is no database at {0} (database.url): nothing to back up")]
    Missing(PathBuf),
    /// The target exists: backups never overwrite.
    #[error("{0} already exists; name a new file (a backup never overwrites one)")]
    Exists(PathBuf),
    /// SQLite refused.
    #[error("cannot back up the database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Writing or moving the copy failed.
    #[error("cannot write the backup {path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The copy does not read back as a sound database.
    #[error("the copy failed its integrity check ({0}); nothing was kept")]
    Damaged(String),
}

/// What a backup holds, read back from the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The copied file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The newest migration applied (the schema version).
    pub schema_version: i64,
    /// People in it.
    pub people: i64,
    /// Grants in it (live or not yet collected).
    pub grants: i64,
}

/// Copies the SQLite database named by `url` to `to` (a new file) and checks the copy.
pub fn backup_sqlite(url: &str, to: &Path) -> Result<Backup, BackupError> {
    if !url.starts_with("sqlite:") {
        return Err(BackupError::NotSqlite(super::redact_url(url)));
    }
    let options = SqliteConnectOptions::from_str(url).map_err(|e| BackupError::Url {
        url: url.to_owned(),
        cause: e.to_string(),
    })?;
    let source = options.get_filename();
    if !source.is_file() {
        return Err(BackupError::Missing(source.to_path_buf()));
    }
    if to.exists() {
        return Err(BackupError::Exists(to.to_path_buf()));
    }
    // Beside the target, so the final rename stays on one file system.
    let partial = to.with_file_name(format!(
        ".{}.partial-{}",
        to.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = copy_and_check(source, &partial, to);
    let _ = std::fs::remove_file(&partial);
    result
}

fn copy_and_check(source: &Path, partial: &Path, to: &Path) -> Result<Backup, BackupError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| BackupError::Io { path, cause }
    };
    {
        // Read-write (never create): a read-only connection to a WAL database cannot always
        // set up the shared-memory file it needs when no server has it open.
        let conn = Connection::open_with_flags(
            source,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let target = partial.to_string_lossy().into_owned();
        conn.execute("VACUUM INTO ?1", [target])?;
    }
    std::fs::File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(io(partial))?;
    let mut backup = read_back(partial)?;
    // Never over a file that appeared meanwhile.
    std::fs::hard_link(partial, to).map_err(|cause| {
        if cause.kind() == std::io::ErrorKind::AlreadyExists {
            BackupError::Exists(to.to_path_buf())
        } else {
            BackupError::Io {
                path: to.to_path_buf(),
                cause,
            }
        }
    })?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The new name is durable once its folder is.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    backup.path = to.to_path_buf();
    Ok(backup)
}

/// Checks the copy and reads what it holds.
fn read_back(path: &Path) -> Result<Backup, BackupError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(BackupError::Damaged(check));
    }
    let count = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0));
    let bytes = std::fs::metadata(path)
        .map_err(|cause| BackupError::Io {
            path: path.to_path_buf(),
            cause,
        })?
        .len();
    Ok(Backup {
        path: path.to_path_buf(),
        bytes,
        schema_version: count("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")?,
        people: count("SELECT COUNT(*) FROM users")?,
        grants: count("SELECT COUNT(*) FROM grants")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_never_overwrites_and_needs_a_sqlite_database_that_exists() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("guildgate.db");
        let url = format!("sqlite://{}", db.display());
        let taken = dir.path().join("taken.db");
        std::fs::write(&taken, "x").unwrap();

        // Act + Assert
        assert!(matches!(
            backup_sqlite("postgres://u:pw@db/gg", &dir.path().join("a.db")),
            Err(BackupError::NotSqlite(url)) if !url.contains("pw")
        ));
        assert!(matches!(
            backup_sqlite(&url, &dir.path().join("a.db")),
            Err(BackupError::Missing(_))
        ));
        Connection::open(&db)
            .unwrap()
            .execute_batch(
                "CREATE TABLE _sqlx_migrations (version BIGINT);
                 INSERT INTO _sqlx_migrations VALUES (7);
                 CREATE TABLE users (id TEXT); CREATE TABLE grants (id TEXT);
                 INSERT INTO users VALUES ('1'), ('2');",
            )
            .unwrap();
        assert!(matches!(
            backup_sqlite(&url, &taken),
            Err(BackupError::Exists(_))
        ));
        let copy = backup_sqlite(&url, &dir.path().join("copy.db")).unwrap();
        assert_eq!((copy.schema_version, copy.people, copy.grants), (7, 2, 0));
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("partial"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
