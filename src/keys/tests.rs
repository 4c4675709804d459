//! Unit tests of the key set: loading, generation, JWKS, and rotation by `maintain`.

use super::files::thumbprint;
use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[test]
fn thumbprint_matches_rfc_7638_example() {
    // RFC 7638 §3.1 example key and its published thumbprint.
    let n = URL_SAFE_NO_PAD.decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw").unwrap();
    let e = URL_SAFE_NO_PAD.decode("AQAB").unwrap();
    assert_eq!(
        thumbprint(&n, &e),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn first_load_generates_a_private_key_and_publishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let set = KeySet::load_or_generate(dir.path(), now).unwrap();
    assert_eq!(set.all().len(), 1);
    assert_eq!(set.active().state, KeyState::Active);
    let jwks: serde_json::Value = serde_json::from_slice(&set.jwks_json()).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], set.active().kid.as_str());
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "private part must never be published"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&set.active().path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second start reuses the key rather than generating another.
    let again = KeySet::load_or_generate(dir.path(), now).unwrap();
    assert_eq!(again.active().kid, set.active().kid);
}

#[test]
fn rotation_keeps_the_old_key_published_and_signs_with_the_new() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let first = KeySet::load_or_generate(dir.path(), now)
        .unwrap()
        .active()
        .kid
        .clone();
    let (_, active_from) = generate_key_file(dir.path(), now).unwrap();
    assert!(active_from - now <= time::Duration::seconds(1));
    let set = KeySet::load(dir.path(), active_from).unwrap();
    assert_ne!(set.active().kid, first);
    assert_eq!(set.find(&first).unwrap().state, KeyState::Previous);
    let jwks: serde_json::Value = serde_json::from_slice(&set.jwks_json()).unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        4,
        "each key and its access-token companion"
    );
}

#[test]
fn a_corrupt_key_file_stops_loading_and_is_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1700000000.pem");
    std::fs::write(&path, "not a key").unwrap();
    let err = KeySet::load_or_generate(dir.path(), OffsetDateTime::now_utc()).unwrap_err();
    assert!(matches!(err, KeyError::Corrupt { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// Rotation: pre-publish, activate, retire.
mod rotation {
    use super::super::*;

    #[test]
    fn maintain_prepublishes_then_activates_then_retires() {
        let dir = tempfile::tempdir().unwrap();
        let start = OffsetDateTime::now_utc();
        let set = KeySet::load_or_generate(dir.path(), start).unwrap();
        let first = set.active().kid.clone();
        let policy = RotationPolicy {
            rotate_every: Duration::from_secs(3600),
            publish_ahead: Duration::from_secs(600),
            retire_after: Duration::from_secs(1200),
        };
        // Young key: nothing happens.
        set.maintain(start + time::Duration::minutes(10), policy)
            .unwrap();
        assert_eq!(set.all().len(), 1);
        // Old key: a successor is published but does not sign yet.
        let t1 = start + time::Duration::hours(1);
        set.maintain(t1, policy).unwrap();
        assert_eq!(set.all().len(), 2);
        assert_eq!(
            set.active().kid,
            first,
            "the new key must not sign before it is published"
        );
        let jwks: serde_json::Value = serde_json::from_slice(&set.jwks_json()).unwrap();
        assert_eq!(
            jwks["keys"].as_array().unwrap().len(),
            4,
            "published ahead, with its companion"
        );
        // After publish_ahead the new key signs; the old one still verifies.
        let t2 = t1 + time::Duration::minutes(11);
        set.reload(t2).unwrap();
        assert_ne!(set.active().kid, first);
        assert!(set.find(&first).is_some());
        // After retire_after the old key is no longer published.
        let t3 = t2 + time::Duration::minutes(21);
        set.maintain(t3, policy).unwrap();
        assert!(set.find(&first).is_none());
        let jwks: serde_json::Value = serde_json::from_slice(&set.jwks_json()).unwrap();
        assert_eq!(
            jwks["keys"].as_array().unwrap().len(),
            2,
            "the new key and its companion"
        );
        let retired_companions = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".p256.retired"))
            .count();
        assert_eq!(retired_companions, 1, "the companion retires with its key");
    }

    #[test]
    fn processes_starting_at_once_on_an_empty_folder_write_one_first_key() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();

        // Act: four "processes" start at the same moment.
        let kids: Vec<String> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| KeySet::load_or_generate(dir.path(), now).unwrap()))
                .collect();
            starts
                .into_iter()
                .map(|s| s.join().unwrap().active().kid.clone())
                .collect()
        });

        // Assert
        assert!(kids.windows(2).all(|w| w[0] == w[1]), "one key: {kids:?}");
        assert_eq!(list_key_files(dir.path()).unwrap().len(), 1);
        assert!(
            !dir.path().join(FIRST_KEY_LOCK).exists(),
            "the lock is gone"
        );
    }
}
