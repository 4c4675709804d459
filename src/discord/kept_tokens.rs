//! A person's Discord tokens, sealed for storage so membership can be re-checked at refresh
//! without the person present. The plaintext is `{"access_token", "refresh_token"}` JSON under
//! AES-256-GCM ([`Sealer`]) with the user id as additional data, so a row cannot be moved to
//! another person.

use super::DiscordTokens;
use crate::sealed::{SealError, Sealer};
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
    sealer: &Sealer,
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

/// Opens what [`seal_tokens`] sealed for the same `user_id`.
pub fn open_tokens(sealer: &Sealer, user_id: &str, sealed: &[u8]) -> Result<KeptTokens, SealError> {
    let bytes = sealer.open(sealed, user_id.as_bytes())?;
    let plain: Plain<String> = serde_json::from_slice(&bytes).map_err(|_| SealError)?;
    Ok(KeptTokens {
        access_token: SecretString::from(plain.access_token),
        refresh_token: plain.refresh_token.map(SecretString::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        let sealer = Sealer::new(&[3u8; 32]).expect("key");
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
        let sealer = Sealer::new(&[3u8; 32]).expect("key");
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
}
