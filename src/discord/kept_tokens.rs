//! A person's Discord tokens, sealed for storage so membership can be re-checked at refresh
//! without the person present. The plaintext is `{"access_token", "refresh_token"}` JSON under
//! AES-256-GCM (the configured [`Keyring`]: sealed with its newest key, opened with any) with
//! the user id as additional data, so a row cannot be moved to another person.

use super::DiscordTokens;
use crate::sealed::{Keyring, SealError};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// Tokens opened from storage. `Debug` never shows them.
#[derive(Clone)]
pub struct KeptTokens {
    /// Bearer token for the REST API.
    pub access_token: SecretString,
    /// Refresh token, when Discord issued one.
    pub refresh_token: Option<SecretString>,
}

impl fmt::Debug for KeptTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeptTokens")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The sealed plaintext's shape (also what earlier releases wrote).
#[derive(Serialize, Deserialize)]
struct Plain<T> {
    access_token: T,
    #[serde(default)]
    refresh_token: Option<T>,
}

/// Seals `tokens` for `user_id`; returns the ciphertext and when the access token expires
/// (`now + expires_in`, or `now` if that cannot be represented, so it reads as expired).
pub fn seal_tokens(
    sealer: &Keyring,
    user_id: &str,
    tokens: &DiscordTokens,
    now: OffsetDateTime,
) -> Result<(Vec<u8>, OffsetDateTime), SealError> {
    let plain = Plain {
        access_token: tokens.access_token.expose_secret(),
        refresh_token: tokens.refresh_token.as_ref().map(|t| t.expose_secret()),
    };
    // Held as a secret so the JSON copy is wiped on drop.
    let json = SecretString::from(serde_json::to_string(&plain).map_err(|_| SealError)?);
    let ciphertext = sealer.seal(json.expose_secret().as_bytes(), user_id.as_bytes())?;
    let expires_at = time::Duration::try_from(tokens.expires_in)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(now);
    Ok((ciphertext, expires_at))
}

/// Opens what [`seal_tokens`] sealed for the same `user_id`, with any configured key.
pub fn open_tokens(
    sealer: &Keyring,
    user_id: &str,
    sealed: &[u8],
) -> Result<KeptTokens, SealError> {
    let opened = sealer.open(sealed, user_id.as_bytes())?;
    let plain: Plain<String> = serde_json::from_slice(&opened.plaintext).map_err(|_| SealError)?;
    Ok(KeptTokens {
        access_token: SecretString::from(plain.access_token),
        refresh_token: plain.refresh_token.map(SecretString::from),
    })
}

/// `guildgate reencrypt`: what was sealed for `user_id` sealed again with the newest key, or
/// `None` when the newest key sealed it already. The plaintext is not parsed: rows of every
/// release re-seal as they are.
pub fn reseal_tokens(
    sealer: &Keyring,
    user_id: &str,
    sealed: &[u8],
) -> Result<Option<Vec<u8>>, SealError> {
    let opened = sealer.open(sealed, user_id.as_bytes())?;
    if opened.by_newest {
        return Ok(None);
    }
    // Held as a secret so the plaintext copy is wiped on drop.
    let plain = secrecy::SecretSlice::from(opened.plaintext);
    sealer
        .seal(plain.expose_secret(), user_id.as_bytes())
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn keyring(keys: &[[u8; 32]]) -> Keyring {
        Keyring::new(keys).expect("keys").expect("some")
    }

    fn tokens(refresh: Option<&str>, expires_in: Duration) -> DiscordTokens {
        DiscordTokens {
            access_token: SecretString::from("access-6qrZcUqja7812RVdnEKjpzOL4CvHBFG"),
            refresh_token: refresh.map(SecretString::from),
            expires_in,
            scopes: vec!["identify".into()],
        }
    }

    #[test]
    fn tokens_round_trip_for_their_owner_only() {
        let sealer = keyring(&[[3u8; 32]]);
        let now = OffsetDateTime::UNIX_EPOCH;
        let t = tokens(
            Some("refresh-D43f5y0ahjqew82j"),
            Duration::from_secs(604_800),
        );
        let (sealed, expires_at) =
            seal_tokens(&sealer, "402931734925557761", &t, now).expect("seal");
        assert_eq!(expires_at, now + Duration::from_secs(604_800));
        assert!(
            !sealed.windows(6).any(|w| w == b"access"),
            "no plaintext in the ciphertext"
        );
        let kept = open_tokens(&sealer, "402931734925557761", &sealed).expect("open");
        assert_eq!(
            kept.access_token.expose_secret(),
            t.access_token.expose_secret()
        );
        assert_eq!(
            kept.refresh_token.as_ref().map(|r| r.expose_secret()),
            Some("refresh-D43f5y0ahjqew82j")
        );
        assert!(
            open_tokens(&sealer, "318172463195504640", &sealed).is_err(),
            "other person"
        );
        let dbg = format!("{kept:?}");
        assert!(!dbg.contains("6qrZ") && !dbg.contains("D43f"), "{dbg}");
    }

    #[test]
    fn rows_from_earlier_releases_and_absurd_lifetimes_still_work() {
        let sealer = keyring(&[[3u8; 32]]);
        let old = sealer
            .seal(br#"{"access_token":"a","refresh_token":null}"#, b"u")
            .expect("seal");
        let kept = open_tokens(&sealer, "u", &old).expect("open");
        assert!(kept.refresh_token.is_none());
        let now = OffsetDateTime::UNIX_EPOCH;
        let (_, expires_at) =
            seal_tokens(&sealer, "u", &tokens(None, Duration::MAX), now).expect("seal");
        assert_eq!(
            expires_at, now,
            "unrepresentable expiry reads as expired, no panic"
        );
    }

    #[test]
    fn resealing_moves_a_row_to_the_newest_key_once() {
        // Arrange: tokens sealed when only the old key was configured.
        let now = OffsetDateTime::UNIX_EPOCH;
        let t = tokens(Some("refresh-D43f5y0ahjqew82j"), Duration::from_secs(60));
        let (old_row, _) = seal_tokens(&keyring(&[[3u8; 32]]), "u", &t, now).expect("seal");
        let rotated = keyring(&[[4u8; 32], [3u8; 32]]);

        // Act
        let resealed = reseal_tokens(&rotated, "u", &old_row)
            .expect("opens")
            .expect("moved");
        let again = reseal_tokens(&rotated, "u", &resealed).expect("opens");

        // Assert
        assert!(again.is_none(), "already on the newest key");
        let newest_only = keyring(&[[4u8; 32]]);
        let kept = open_tokens(&newest_only, "u", &resealed).expect("the old key can go");
        assert_eq!(
            kept.refresh_token.as_ref().map(|r| r.expose_secret()),
            Some("refresh-D43f5y0ahjqew82j")
        );
        assert!(
            reseal_tokens(&newest_only, "u", &old_row).is_err(),
            "no key opens it"
        );
    }
}
