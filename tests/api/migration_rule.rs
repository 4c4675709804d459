//! The migration rule (`migrations/README.md`): a migration newer than the last release holds no
//! statement that would break the release before it, unless it says why it may.

use std::path::{Path, PathBuf};

/// One migration file: its number and its SQL.
struct Migration {
    number: u32,
    path: PathBuf,
    sql: String,
}

fn migrations(backend: &str) -> Vec<Migration> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut all: Vec<Migration> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let number = name
                .split('_')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{name} is not NNNN_name.sql"));
            let sql = std::fs::read_to_string(&path).unwrap();
            Migration { number, path, sql }
        })
        .collect();
    all.sort_by_key(|m| m.number);
    all
}

fn released() -> u32 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/released");
    std::fs::read_to_string(&path)
        .unwrap()
        .trim()
        .parse()
        .expect("migrations/released holds a migration number")
}

/// The statements of `sql` (comments removed), upper-cased and on one line each.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    without_comments
        .split(';')
        .map(|s| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// What in `statement` would break the previous release, if anything.
fn destructive(statement: &str) -> Option<&'static str> {
    let has = |words: &str| statement.contains(words);
    if has("DROP TABLE") {
        Some("DROP TABLE")
    } else if has("DROP COLUMN") {
        Some("DROP COLUMN")
    } else if has(" RENAME ") || statement.ends_with(" RENAME") {
        Some("a rename")
    } else if has("ALTER COLUMN") && (has(" TYPE ") || has(" SET DATA TYPE")) {
        Some("a type change")
    } else if has("SET NOT NULL") {
        Some("SET NOT NULL")
    } else if has("ADD COLUMN") && has("NOT NULL") && !has("DEFAULT") {
        Some("a NOT NULL column without a default")
    } else if has("ADD CONSTRAINT") {
        Some("a new constraint")
    } else if has("CREATE UNIQUE INDEX") {
        Some("a new unique index")
    } else if statement.starts_with("TRUNCATE") || statement.starts_with("DELETE FROM") {
        Some("deleting rows")
    } else {
        None
    }
}

/// Every problem of one migration: its destructive statements, unless it says they are ok.
fn problems(migration: &Migration) -> Vec<String> {
    if migration.sql.contains("-- destructive: ok") {
        return Vec::new();
    }
    statements(&migration.sql)
        .iter()
        .filter_map(|s| {
            destructive(s).map(|what| format!("{}: {what} in `{s}`", migration.path.display()))
        })
        .collect()
}

#[test]
fn no_migration_newer_than_the_last_release_holds_a_destructive_statement() {
    // Arrange
    let released = released();

    // Act
    let found: Vec<String> = ["postgres", "sqlite"]
        .iter()
        .flat_map(|backend| migrations(backend))
        .filter(|m| m.number > released)
        .flat_map(|m| problems(&m))
        .collect();

    // Assert
    assert!(
        found.is_empty(),
        "destructive statements break the release before (migrations/README.md):\n{}",
        found.join("\n")
    );
}

#[test]
fn every_shipped_migration_followed_the_rule_too() {
    // Act
    let found: Vec<String> = ["postgres", "sqlite"]
        .iter()
        .flat_map(|backend| migrations(backend))
        .flat_map(|m| problems(&m))
        .collect();

    // Assert
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn both_backends_have_the_same_migrations_and_the_release_mark_names_one() {
    // Act
    let numbers = |backend| {
        migrations(backend)
            .iter()
            .map(|m| m.number)
            .collect::<Vec<_>>()
    };
    let (postgres, sqlite) = (numbers("postgres"), numbers("sqlite"));

    // Assert
    assert_eq!(postgres, sqlite, "the same numbers in both folders");
    assert!(
        postgres.contains(&released()),
        "migrations/released names a migration"
    );
}

#[test]
fn the_check_flags_each_kind_of_destructive_statement_and_lets_additive_ones_pass() {
    // Arrange
    let flagged = [
        "DROP TABLE consents;",
        "ALTER TABLE users DROP COLUMN avatar;",
        "ALTER TABLE users RENAME COLUMN avatar TO picture;",
        "ALTER TABLE grants RENAME TO family;",
        "ALTER TABLE users ALTER COLUMN locale TYPE TEXT;",
        "ALTER TABLE users ALTER COLUMN locale SET NOT NULL;",
        "ALTER TABLE users ADD COLUMN tier TEXT NOT NULL;",
        "ALTER TABLE grants ADD CONSTRAINT one_per_client UNIQUE (client_id, user_id);",
        "CREATE UNIQUE INDEX sessions_one ON sessions (user_id);",
        "DELETE FROM sessions;",
        "TRUNCATE grants;",
    ];
    let additive = [
        "CREATE TABLE things (id TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL)",
        "ALTER TABLE users ADD COLUMN tier TEXT",
        "ALTER TABLE upstream_logins ADD COLUMN source TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX grants_client ON grants (client_id)",
        "-- DROP TABLE users; (a comment only)\nSELECT 1",
    ];

    // Act + Assert
    for sql in flagged {
        let migration = Migration {
            number: 99,
            path: "new.sql".into(),
            sql: sql.to_owned(),
        };
        assert_eq!(problems(&migration).len(), 1, "{sql}");
        let allowed = Migration {
            sql: format!("-- destructive: ok (unused since release 3)\n{sql}"),
            ..migration
        };
        assert!(problems(&allowed).is_empty(), "{sql} with its reason");
    }
    for sql in additive {
        let migration = Migration {
            number: 99,
            path: "new.sql".into(),
            sql: sql.to_owned(),
        };
        assert!(
            problems(&migration).is_empty(),
            "{sql}: {:?}",
            problems(&migration)
        );
    }
}
