//! `guildgate reencrypt`: re-seals every kept Discord token with the newest `[secrets]` key, so
//! the older keys can then be removed. Safe while guildgate runs: a row is replaced only if it
//! still holds what was read (a membership re-check that stored fresh tokens meanwhile wins,
//! and sealed them with the newest key itself when it runs with the same configuration).

use crate::config::Settings;
use crate::discord::kept_tokens;
use crate::domain::DiscordId;
use crate::sealed::Keyring;
use crate::startup::StartupError;
use crate::store::{self, Store, StoreError};
use secrecy::ExposeSecret;

/// People read per page.
const PAGE: u32 = 500;
/// How often a row that changed under us is read again before it is left for the next run.
const ATTEMPTS: usize = 3;

/// What a run did, row by row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reencrypted {
    /// Re-sealed with the newest key.
    pub resealed: u64,
    /// Sealed with the newest key already.
    pub current: u64,
    /// No configured key opens them: left as they are (that person signs in with Discord again
    /// at their next membership re-check).
    pub unreadable: u64,
    /// Changed by guildgate on every attempt: left for the next run.
    pub busy: u64,
}

/// `guildgate reencrypt`: connects (without migrating), re-seals, reports.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let config = settings.validate().map_err(StartupError::Config)?;
    let keyring = Keyring::new(&config.encryption_keys)
        .map_err(|e| anyhow::anyhow!("[secrets] keys cannot be used: {e}"))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no secrets.encryption_keys (or secrets.encryption_key) is configured: there is no key to re-seal with"
            )
        })?;
    let url = settings.database.url.expose_secret();
    let wait = settings
        .database
        .connect_timeout()
        .map_err(|problem| StartupError::Config(vec![problem]))?;
    let store = store::connect_waiting(url, 2, wait).await?;
    let done = reencrypt(store.as_ref(), &keyring).await?;
    println!(
        "re-sealed {} kept Discord token(s) with the newest key; {} already used it",
        done.resealed, done.current
    );
    if done.unreadable > 0 {
        println!(
            "{} could not be opened by any configured key and were left as they are: those people sign in with Discord again at their next membership re-check",
            done.unreadable
        );
    }
    if done.busy > 0 {
        println!(
            "{} changed while this ran and were left as they are: run `guildgate reencrypt` again",
            done.busy
        );
    } else if done.unreadable == 0 {
        println!(
            "every kept Discord token is sealed with the newest key: the older keys may now be removed from secrets.encryption_keys (keep secrets.encryption_key while a client uses pairwise subjects)"
        );
    }
    Ok(())
}

/// Re-seals every person's kept tokens that an older key sealed, page by page.
pub async fn reencrypt(store: &dyn Store, keyring: &Keyring) -> Result<Reencrypted, StoreError> {
    let mut done = Reencrypted::default();
    let mut after: Option<DiscordId> = None;
    loop {
        let page = store.list_kept_tokens(after.as_ref(), PAGE).await?;
        let Some((last, _)) = page.last() else {
            return Ok(done);
        };
        let next = last.clone();
        for (user, sealed) in page {
            reencrypt_one(store, keyring, &user, sealed, &mut done).await?;
        }
        after = Some(next);
    }
}

async fn reencrypt_one(
    store: &dyn Store,
    keyring: &Keyring,
    user: &DiscordId,
    mut sealed: Vec<u8>,
    done: &mut Reencrypted,
) -> Result<(), StoreError> {
    for _ in 0..ATTEMPTS {
        match kept_tokens::reseal_tokens(keyring, user.as_str(), &sealed) {
            Err(_) => {
                tracing::warn!(user = %user, "kept Discord tokens open with no configured key; left as they are");
                done.unreadable += 1;
                return Ok(());
            }
            Ok(None) => {
                done.current += 1;
                return Ok(());
            }
            Ok(Some(resealed)) => {
                if store.replace_kept_tokens(user, &sealed, &resealed).await? {
                    done.resealed += 1;
                    return Ok(());
                }
            }
        }
        // Changed meanwhile (or cleared): look again.
        match store.get_upstream_tokens(user).await? {
            Some(now) => sealed = now.ciphertext,
            None => return Ok(()),
        }
    }
    done.busy += 1;
    Ok(())
}
