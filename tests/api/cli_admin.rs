//! The admin commands through the real binary: `clients add` (a secret shown once and a block
//! guildgate accepts), `clients list` and `users show` (against a database with a person in it).

use crate::cli::{run_guildgate, stderr_of, stdout_of};
use crate::helpers::{ALICE, backend, client_id, discord_id};
use crate::test_db::fresh_database;
use argon2::{PasswordHash, PasswordVerifier};
use guildgate::domain::{GrantId, OpaqueToken, Scopes, SessionId};
use guildgate::store::{GrantRecord, MembershipSnapshot, SessionDevice, SessionRecord, UserRecord};
use time::{Duration, OffsetDateTime};

/// The value after `label` on its line of `text`.
fn line_value(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
        .trim()
        .to_owned()
}

#[test]
fn clients_add_prints_the_secret_once_and_a_block_guildgate_accepts_and_lists() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();

    // Act
    let added = run_guildgate(
        dir.path(),
        &[
            "clients",
            "add",
            "Team wiki",
            "--redirect-uri",
            "https://wiki.example.com/oidc/callback",
        ],
        &[],
    );

    // Assert
    let out = stdout_of(&added);
    assert_eq!(added.status.code(), Some(0), "{}", stderr_of(&added));
    let secret = line_value(&out, "client secret:");
    assert!(secret.len() >= 43, "a 256-bit secret: {secret}");
    assert_eq!(out.matches(&secret).count(), 1, "shown once:\n{out}");
    let block = &out[out.find("[[clients]]").expect("a [[clients]] block")..];
    assert!(block.contains("id = \"team-wiki\""), "{block}");
    assert!(block.contains("name = \"Team wiki\""), "{block}");
    let hash = line_value(block, "secret_hash = ");
    let hash = hash.trim_matches('"');
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    argon2::Argon2::default()
        .verify_password(secret.as_bytes(), &PasswordHash::new(hash).expect("PHC"))
        .expect("the hash is the printed secret's");

    // Act 2: the block is valid configuration, and `clients list` shows it.
    let config = dir.path().join("guildgate.toml");
    std::fs::write(&config, block).unwrap();
    let path = config.display().to_string();
    let checked = run_guildgate(dir.path(), &["check-config", "-c", &path], &[]);
    let listed = run_guildgate(dir.path(), &["clients", "list", "-c", &path], &[]);

    // Assert 2
    assert_eq!(checked.status.code(), Some(0), "{}", stderr_of(&checked));
    let list = stdout_of(&listed);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr_of(&listed));
    assert!(
        list.contains("team-wiki  (Team wiki, confidential)"),
        "{list}"
    );
    assert!(
        list.contains("https://wiki.example.com/oidc/callback"),
        "{list}"
    );
    assert!(list.contains("the global [access] rules only"), "{list}");
    assert!(!list.contains("argon2"), "no secrets listed:\n{list}");
}

#[test]
fn clients_add_public_has_no_secret_and_a_taken_id_or_bad_uri_is_refused() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("guildgate.toml");
    std::fs::write(
        &config,
        "[[clients]]\nid = \"wiki\"\npublic = true\nredirect_uris = [\"https://wiki.example.com/cb\"]\n",
    )
    .unwrap();
    let path = config.display().to_string();

    // Act
    let public = run_guildgate(
        dir.path(),
        &[
            "clients",
            "add",
            "CLI tool",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/callback",
        ],
        &[],
    );
    let taken = run_guildgate(
        dir.path(),
        &[
            "clients",
            "add",
            "Wiki",
            "--redirect-uri",
            "https://wiki.example.com/other",
            "-c",
            &path,
        ],
        &[],
    );
    let bad_uri = run_guildgate(
        dir.path(),
        &["clients", "add", "Chat", "--redirect-uri", "/relative#frag"],
        &[],
    );
    let listed = run_guildgate(dir.path(), &["clients", "list", "-c", &path], &[]);

    // Assert
    let out = stdout_of(&public);
    assert_eq!(public.status.code(), Some(0), "{}", stderr_of(&public));
    assert!(out.contains("public = true"), "{out}");
    assert!(!out.contains("secret_hash"), "{out}");
    assert!(!out.contains("client secret:"), "{out}");
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        stderr_of(&taken).contains("already registered"),
        "{}",
        stderr_of(&taken)
    );
    assert_eq!(bad_uri.status.code(), Some(1));
    assert!(
        stderr_of(&bad_uri).contains("--redirect-uri /relative#frag"),
        "{}",
        stderr_of(&bad_uri)
    );
    assert!(
        stdout_of(&listed).contains("wiki  (wiki, public)"),
        "{}",
        stdout_of(&listed)
    );
}

#[tokio::test]
async fn users_show_lists_a_persons_sessions_grants_consents_and_membership() {
    // Arrange: a database in which Alice signed in to the wiki from Firefox.
    let db = fresh_database(backend()).await;
    let store = guildgate::store::connect(&db.url, 2)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    store
        .upsert_user(&UserRecord {
            id: discord_id(ALICE),
            username: "alice".to_owned(),
            global_name: Some("Alice".to_owned()),
            avatar: None,
            email: Some("alice@example.com".to_owned()),
            email_verified: true,
            locale: None,
            updated_at: now,
        })
        .await
        .unwrap();
    let session = SessionRecord {
        id: SessionId::parse("sid-1234").unwrap(),
        secret_hash: OpaqueToken::generate().hash(),
        user_id: discord_id(ALICE),
        auth_time: now,
        created_at: now,
        expires_at: now + Duration::hours(12),
        last_seen_at: now,
        device: SessionDevice::new(
            Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
            Some("192.0.2.7".to_owned()),
        ),
    };
    store.insert_session(&session).await.unwrap();
    store
        .insert_grant(
            &GrantRecord {
                id: GrantId::parse("grant-5678").unwrap(),
                client_id: client_id("wiki"),
                user_id: discord_id(ALICE),
                session_id: Some(session.id.clone()),
                scopes: Scopes::parse_request("openid profile"),
                auth_time: now,
                created_at: now,
                expires_at: now + Duration::days(30),
                revoked_at: None,
                dpop_jkt: None,
            },
            None,
        )
        .await
        .unwrap();
    store
        .save_consent(
            &discord_id(ALICE),
            &client_id("wiki"),
            Scopes::parse_request("openid profile"),
            now,
        )
        .await
        .unwrap();
    store
        .save_membership(
            &discord_id(ALICE),
            &MembershipSnapshot {
                snapshot: r#"{"guilds":["812345678901234567"],"roles":[]}"#.to_owned(),
                fetched_at: now,
            },
        )
        .await
        .unwrap();
    drop(store);
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keys = keys.display().to_string();
    let env = [
        ("GUILDGATE__DATABASE__URL", db.url.as_str()),
        ("GUILDGATE__KEYS__DIR", keys.as_str()),
    ];

    // Act
    let shown = run_guildgate(dir.path(), &["users", "show", ALICE], &env);
    let unknown = run_guildgate(dir.path(), &["users", "show", "80351110224678912"], &env);
    let invalid = run_guildgate(dir.path(), &["users", "show", "alice"], &env);

    // Assert
    let out = stdout_of(&shown);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr_of(&shown));
    for expected in [
        "Alice (@alice), Discord id 318172463195504640",
        "sessions (1 live):",
        "sid-1234",
        "192.0.2.7",
        "Firefox on Linux",
        "grants (1 live):",
        "grant-5678  client wiki  scopes \"openid profile\"",
        "session sid-1234",
        "consents (1):",
        "membership snapshot (taken",
        "812345678901234567",
    ] {
        assert!(out.contains(expected), "{expected:?} in:\n{out}");
    }
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr_of(&unknown).contains("has signed in here"),
        "{}",
        stderr_of(&unknown)
    );
    assert_eq!(invalid.status.code(), Some(1));
}
