//! `guildgate keys list | rotate | revoke`: the signing keys in `keys.dir`, described the same
//! way by every command (kid, activation time, state as `keys list` shows it).

use crate::audit;
use crate::config::Settings;
use crate::keys::{self, KeyError, KeySet, KeyState};
use crate::startup::StartupError;
use std::path::Path;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How soon running processes see a change to the folder.
const PICKED_UP: &str = "running guildgate processes pick it up at their next reload of the \
    folder (keys.reload_every, 60s by default), or at once on SIGHUP (`guildgate reload`)";

/// How soon they see it when told through the database's change feed.
const ANNOUNCED: &str = "running guildgate processes on this database re-read the folder \
    within a second (told through the database)";

/// Tells the processes following the database's change feed that the folder changed; the
/// line saying when running processes see the change.
fn announce(settings: &Settings) -> String {
    use secrecy::ExposeSecret;
    let url = settings.database.url.expose_secret();
    if crate::store::sqlite_file_missing(url) {
        // No database yet, so nothing serves from it: don't create an empty file.
        return PICKED_UP.to_owned();
    }
    let announced = actix_web::rt::System::new().block_on(async {
        crate::store::connect(url, 1)
            .await?
            .announce_keys_changed()
            .await
    });
    match announced {
        Ok(()) => ANNOUNCED.to_owned(),
        Err(e) => format!("could not tell them through the database ({e}); {PICKED_UP}"),
    }
}

/// `guildgate keys list`: kid, activation time and state of each key file; a deployment
/// without keys yet (no folder, or an empty one) is told so.
pub fn list(settings: &Settings) -> anyhow::Result<()> {
    let dir = &settings.keys.dir;
    if keys::folder_has_no_keys(dir).map_err(StartupError::from)? {
        println!(
            "no signing keys in {} yet: `guildgate serve` generates the first one when it starts (or run `guildgate keys rotate`)",
            dir.display()
        );
        return Ok(());
    }
    // Through StartupError, so an unreadable file is named with its mode as at start-up.
    let set = KeySet::load(dir, OffsetDateTime::now_utc()).map_err(StartupError::from)?;
    println!("{:<45} {:<22} STATE", "KID", "ACTIVATES");
    for key in set.all() {
        println!(
            "{:<45} {:<22} {}",
            key.kid,
            rfc3339(key.activates_at),
            key.state
        );
    }
    Ok(())
}

/// `guildgate keys rotate`: a new key that signs from now on (or a second later, when a key
/// already starts in this second); the old ones stay published. Described as `keys list` then
/// shows it.
pub fn rotate(settings: &Settings) -> anyhow::Result<()> {
    let dir = &settings.keys.dir;
    let now = OffsetDateTime::now_utc();
    let path = if keys::folder_has_no_keys(dir).map_err(StartupError::from)? {
        // On an empty folder the first key is the new one (not a first key and then another).
        let set = KeySet::load_or_generate(dir, now).map_err(StartupError::from)?;
        set.active().path.clone()
    } else {
        // Refuse to rotate over a corrupt folder: the admin must see that first. A folder
        // without an active key (all retired) is what rotating repairs.
        match KeySet::load(dir, now) {
            Ok(_) | Err(KeyError::NoActiveKey(_)) => {}
            Err(e) => return Err(StartupError::from(e).into()),
        }
        keys::generate_key_file(dir, now)?.0
    };
    let new = describe(dir, &path, now)?;
    audit::emit(
        &audit::RequestInfo::NONE,
        &audit::Event::KeyRotation {
            by: "keys rotate",
            key: &new.kid,
        },
    );
    println!(
        "new signing key {} written to {}\n  state: {}\n  {}",
        new.kid,
        path.display(),
        new.explained(),
        announce(settings)
    );
    Ok(())
}

/// `guildgate keys revoke KID`: the key leaves the JWKS and tokens it signed are refused; when
/// it was signing, a new key signs instead. Audit-logged (`key_revoked`, at WARN).
pub fn revoke(settings: &Settings, kid: &str) -> anyhow::Result<()> {
    let dir = &settings.keys.dir;
    let now = OffsetDateTime::now_utc();
    let revocation = keys::revoke_key(dir, kid, now).map_err(StartupError::from)?;
    if revocation.was == KeyState::Revoked {
        println!(
            "key {} was already revoked; nothing changed",
            revocation.kid
        );
        return Ok(());
    }
    audit::emit(
        &audit::RequestInfo::NONE,
        &audit::Event::KeyRevoked {
            key: &revocation.kid,
        },
    );
    let companion = revocation
        .access_kid
        .as_deref()
        .map(|a| format!(" and its access-token key {a}"))
        .unwrap_or_default();
    println!(
        "revoked signing key {}{companion} (it was {}): removed from /jwks.json; ID and access tokens it signed are refused; refresh tokens keep working and get tokens signed by the active key",
        revocation.kid, revocation.was
    );
    if let Some(path) = &revocation.replacement {
        let new = describe(dir, path, now)?;
        println!(
            "new signing key {} written to {}\n  state: {}",
            new.kid,
            path.display(),
            new.explained()
        );
    }
    println!("  {}", announce(settings));
    Ok(())
}

/// A key as `keys list` shows it at `now`.
struct Described {
    kid: String,
    state: KeyState,
    activates_at: OffsetDateTime,
}

impl Described {
    fn explained(&self) -> String {
        match self.state {
            KeyState::Active => "active (signs new tokens)".to_owned(),
            KeyState::Next => format!(
                "next (published now, signs from {})",
                rfc3339(self.activates_at)
            ),
            other => other.to_string(),
        }
    }
}

/// The key in `path`, with its state at `now`, read the way `keys list` reads it.
fn describe(dir: &Path, path: &Path, now: OffsetDateTime) -> anyhow::Result<Described> {
    let set = KeySet::load(dir, now).map_err(StartupError::from)?;
    let key = set
        .all()
        .into_iter()
        .find(|k| k.path == path)
        .ok_or_else(|| anyhow::anyhow!("the new key {} was not found again", path.display()))?;
    Ok(Described {
        kid: key.kid.clone(),
        state: key.state,
        activates_at: key.activates_at,
    })
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}
