//! Revoking a compromised signing key (`guildgate keys revoke KID`): its files are renamed
//! `….pem.revoked` / `….p256.revoked`, so no process publishes it or accepts what it signed
//! after its next reload of the folder (at once on SIGHUP); when it was the key signing new
//! tokens, a fresh key takes over first, so the folder never lacks an active key.
//!
//! Refresh tokens are opaque values in the database, not signed: a grant whose last ID token
//! the revoked key signed keeps refreshing, and its next tokens are signed by the new key.

use super::{KeyError, KeySet, KeyState, p256};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What [`revoke_key`] did.
#[derive(Debug)]
pub struct Revocation {
    /// The revoked key's kid (RFC 7638 thumbprint of its RSA key).
    pub kid: String,
    /// Its access-token companion's kid, revoked with it.
    pub access_kid: Option<String>,
    /// Its state before: `Revoked` means it already was, and nothing changed.
    pub was: KeyState,
    /// The file of the key written to replace it, when it was the active key.
    pub replacement: Option<PathBuf>,
}

/// Revokes the key whose kid (or whose access-token companion's kid) is `kid`. Refuses a
/// folder with an unreadable key, like start-up.
pub fn revoke_key(dir: &Path, kid: &str, now: OffsetDateTime) -> Result<Revocation, KeyError> {
    let set = KeySet::load(dir, now)?;
    let key = set
        .all()
        .into_iter()
        .find(|k| k.kid == kid || k.access.as_ref().is_some_and(|a| a.kid == kid))
        .ok_or_else(|| KeyError::UnknownKid {
            kid: kid.to_owned(),
            dir: dir.to_path_buf(),
        })?;
    let mut revocation = Revocation {
        kid: key.kid.clone(),
        access_kid: key.access.as_ref().map(|a| a.kid.clone()),
        was: key.state,
        replacement: None,
    };
    if key.state == KeyState::Revoked {
        return Ok(revocation);
    }
    // The successor first: a process reloading between the two steps still finds an active key.
    if key.state == KeyState::Active {
        let (path, _) = super::generate_key_file(dir, now)?;
        revocation.replacement = Some(path);
    }
    let revoked = dir.join(format!("{}.pem.revoked", key.activates_at.unix_timestamp()));
    // The companion first, as at retirement: it is the one a crash in between could leave
    // published.
    let companion = p256::companion_path(&key.path);
    rename_if_there(&companion, &p256::companion_path(&revoked))?;
    rename_if_there(&key.path, &revoked)?;
    Ok(revocation)
}

fn rename_if_there(from: &Path, to: &Path) -> Result<(), KeyError> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(KeyError::Write {
            path: from.to_path_buf(),
            cause: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoking_the_active_key_unpublishes_it_and_a_new_key_signs() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let then = OffsetDateTime::now_utc() - time::Duration::minutes(5);
        let set = KeySet::load_or_generate(dir.path(), then).unwrap();
        let old = set.active();
        let now = OffsetDateTime::now_utc();

        // Act
        let revocation = revoke_key(dir.path(), &old.kid, now).unwrap();
        set.reload(now).unwrap();

        // Assert
        assert_eq!(revocation.was, KeyState::Active);
        assert!(revocation.replacement.is_some());
        assert_ne!(set.active().kid, old.kid, "a new key signs");
        assert!(set.find(&old.kid).is_none(), "the old one verifies nothing");
        let access_kid = old.access.as_ref().unwrap().kid.clone();
        assert!(set.find_access(&access_kid).is_none());
        let jwks = String::from_utf8(set.jwks_json().to_vec()).unwrap();
        assert!(!jwks.contains(&old.kid) && !jwks.contains(&access_kid));
        let listed: Vec<_> = set.all().iter().map(|k| (k.kid.clone(), k.state)).collect();
        assert!(
            listed.contains(&(old.kid.clone(), KeyState::Revoked)),
            "{listed:?}"
        );
    }

    #[test]
    fn revoking_by_the_companion_kid_revokes_the_pair_and_twice_changes_nothing() {
        // Arrange: a previous key and an active one.
        let dir = tempfile::tempdir().unwrap();
        let then = OffsetDateTime::now_utc() - time::Duration::minutes(5);
        let set = KeySet::load_or_generate(dir.path(), then).unwrap();
        let old = set.active();
        let now = OffsetDateTime::now_utc();
        crate::keys::generate_key_file(dir.path(), now).unwrap();
        let access_kid = old.access.as_ref().unwrap().kid.clone();

        // Act
        let first = revoke_key(dir.path(), &access_kid, now).unwrap();
        let second = revoke_key(dir.path(), &access_kid, now).unwrap();

        // Assert
        assert_eq!(
            (first.kid.as_str(), first.was),
            (old.kid.as_str(), KeyState::Previous)
        );
        assert!(first.replacement.is_none(), "the active key is untouched");
        assert_eq!(second.was, KeyState::Revoked);
        assert!(matches!(
            revoke_key(dir.path(), "nope", now),
            Err(KeyError::UnknownKid { .. })
        ));
    }
}
