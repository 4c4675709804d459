//! The account page's logic: who the person is, the apps they used and their sessions, and the
//! three things they may do there (revoke an app, sign out one session, sign out everywhere).
//!
//! Every action acts only on the signed-in person's own records: an app is revoked for this
//! person only, and a session id from the form is honoured only when it is one of theirs.

use super::{Context, logout};
use crate::domain::{ClientId, DiscordId, Scopes, SessionId, constant_time_eq};
use crate::error::OAuthError;
use crate::store::{SessionRecord, StoreError, UserRecord};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Everything the account page shows.
#[derive(Debug, Clone)]
pub struct Overview {
    /// The person as Discord last described them.
    pub user: UserRecord,
    /// Their Discord avatar (or default avatar) URL.
    pub avatar_url: String,
    /// Apps holding a live grant or a remembered consent, by display name.
    pub apps: Vec<AppUse>,
    /// Live sessions, newest first.
    pub sessions: Vec<SessionView>,
}

/// One app the person has used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUse {
    /// The client id (the form's value for "revoke").
    pub client_id: ClientId,
    /// Its display name (the id when the app is no longer registered).
    pub name: String,
    /// When it last signed the person in, if a grant is still kept.
    pub last_sign_in: Option<OffsetDateTime>,
    /// The scopes it receives (live grants, else the remembered consent), canonical order.
    pub scopes: Vec<String>,
    /// The claims those scopes release.
    pub claims: Vec<&'static str>,
    /// Whether the person gave consent that is remembered.
    pub consented: bool,
}

/// One live session as the person sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// Public session id (the form's value for "sign out this session").
    pub id: SessionId,
    /// When it was opened.
    pub started: OffsetDateTime,
    /// When it was last used.
    pub last_used: OffsetDateTime,
    /// The browser, named from its User-Agent.
    pub browser: String,
    /// The address it was opened from, as guildgate saw it.
    pub ip: Option<String>,
    /// Whether it is the session of the browser looking at the page.
    pub current: bool,
}

/// What an account action could not do.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The session id names no live session of this person (another person's, or ended).
    #[error("no such session of yours")]
    NotYourSession,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Ending a session failed.
    #[error("cannot end the session")]
    Logout(OAuthError),
}

impl AccountError {
    /// Whether the cause is passing (the database is down or full), not a fault.
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::NotYourSession => false,
            Self::Store(e) => e.is_temporary(),
            Self::Logout(e) => e.is_temporary(),
        }
    }
}

/// The page's contents for the person signed in with `session`.
pub async fn overview(
    ctx: &Context<'_>,
    session: &SessionRecord,
    now: OffsetDateTime,
) -> Result<Option<Overview>, StoreError> {
    let Some(user) = ctx.store.get_user(&session.user_id).await? else {
        return Ok(None);
    };
    let apps = apps_of(ctx, &user.id, now).await?;
    let sessions = ctx
        .store
        .list_sessions(Some(&user.id), now)
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: s.id == session.id,
            browser: browser_name(s.device.user_agent.as_deref()),
            ip: s.device.ip,
            id: s.id,
            started: s.created_at,
            last_used: s.last_seen_at,
        })
        .collect();
    Ok(Some(Overview {
        avatar_url: crate::claims::picture_url(user.id.as_str(), user.avatar.as_deref()),
        user,
        apps,
        sessions,
    }))
}

async fn apps_of(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    now: OffsetDateTime,
) -> Result<Vec<AppUse>, StoreError> {
    // client id -> (scopes of its live grants, if any; consented scopes, if any)
    let mut used: BTreeMap<ClientId, (Option<Scopes>, Option<Scopes>)> = BTreeMap::new();
    for grant in ctx.store.list_user_grants(user_id, now).await? {
        let granted = &mut used.entry(grant.client_id).or_default().0;
        *granted = Some(granted.map_or(grant.scopes, |g| g.union(grant.scopes)));
    }
    for consent in ctx.store.list_consents(user_id).await? {
        used.entry(consent.client_id).or_default().1 = Some(consent.scopes);
    }
    let last: BTreeMap<ClientId, OffsetDateTime> = ctx
        .store
        .last_sign_ins(user_id)
        .await?
        .into_iter()
        .map(|s| (s.client_id, s.last_sign_in))
        .collect();
    let mut apps: Vec<AppUse> = used
        .into_iter()
        .map(|(client_id, (granted, consented))| {
            let scopes: Vec<String> = granted
                .or(consented)
                .unwrap_or_default()
                .iter()
                .map(str::to_owned)
                .collect();
            let mut claims: Vec<&'static str> =
                scopes.iter().flat_map(|s| claims_of(s)).copied().collect();
            claims.dedup();
            AppUse {
                name: ctx
                    .clients
                    .get(client_id.as_str())
                    .map_or_else(|| client_id.to_string(), |c| c.name.clone()),
                last_sign_in: last.get(&client_id).copied(),
                consented: consented.is_some(),
                scopes,
                claims,
                client_id,
            }
        })
        .collect();
    apps.sort_by(|a, b| (&a.name, &a.client_id).cmp(&(&b.name, &b.client_id)));
    Ok(apps)
}

/// The claims a scope releases (DESIGN.md "Claims").
fn claims_of(scope: &str) -> &'static [&'static str] {
    match scope {
        "openid" => &["sub"],
        "profile" => &["preferred_username", "name", "picture", "locale"],
        "email" => &["email", "email_verified"],
        "groups" => &["groups"],
        "offline_access" => &["access while you are away"],
        _ => &[],
    }
}

/// Revokes an app for the person: every grant it holds for them ends (its access and refresh
/// tokens stop working), a remembered consent is withdrawn, and the app is told by back-channel
/// logout (a logout token with `sub` only: every session of the person at the app, Back-Channel
/// Logout §2.4). Whether there was anything to revoke.
pub async fn revoke_app(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    client_id: &ClientId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let revoked = ctx
        .store
        .revoke_client_grants(user_id, client_id, now)
        .await?;
    let consent_withdrawn = ctx.store.revoke_consent(user_id, client_id).await?;
    if revoked.is_empty() && !consent_withdrawn {
        return Ok(false);
    }
    logout::queue(ctx, std::slice::from_ref(client_id), user_id, None, now).await?;
    tracing::info!(user = %user_id, %client_id, grants = revoked.len(), consent_withdrawn, "app revoked from the account page");
    Ok(true)
}

/// Ends one of the person's own sessions (and tells its apps); a session id that is not one
/// of their live sessions is refused, so nobody can end another person's session.
pub async fn sign_out_session(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    session_id: &SessionId,
    now: OffsetDateTime,
) -> Result<(), AccountError> {
    let theirs = ctx
        .store
        .list_sessions(Some(user_id), now)
        .await?
        .iter()
        .any(|s| s.id == *session_id);
    if !theirs {
        return Err(AccountError::NotYourSession);
    }
    logout::end_session(ctx, session_id, now)
        .await
        .map_err(AccountError::Logout)?;
    Ok(())
}

/// Ends every live session of the person, each telling its apps. Grants of apps with offline
/// access stay: they do not depend on a session, and "revoke" on the app ends them.
pub async fn sign_out_everywhere(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    now: OffsetDateTime,
) -> Result<usize, AccountError> {
    let sessions = ctx.store.list_sessions(Some(user_id), now).await?;
    for session in &sessions {
        logout::end_session(ctx, &session.id, now)
            .await
            .map_err(AccountError::Logout)?;
    }
    Ok(sessions.len())
}

/// The CSRF token of the account forms: derived from the session cookie, so only the browser
/// holding the session can produce it and nothing needs storing; it changes with the session.
pub fn csrf_token(session_secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!(
        "guildgate-account:{session_secret}"
    )))
}

/// Whether a form's CSRF token is the session's, compared in constant time.
pub fn csrf_matches(session_secret: &str, presented: &str) -> bool {
    constant_time_eq(csrf_token(session_secret).as_bytes(), presented.as_bytes())
}

/// A browser's name for people ("Firefox on Linux"), from its User-Agent; the order matters
/// because Chromium-based browsers also claim to be Chrome and Safari.
pub fn browser_name(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return "Unknown browser".to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => "Unknown browser".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_named_from_their_user_agent() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("", "Unknown browser"),
        ];
        for (ua, expected) in cases {
            assert_eq!(browser_name(Some(ua)), expected, "{ua}");
        }
        assert_eq!(browser_name(None), "Unknown browser");
    }

    #[test]
    fn the_csrf_token_belongs_to_one_session() {
        let token = csrf_token("secret-a");
        assert!(csrf_matches("secret-a", &token));
        assert!(!csrf_matches("secret-b", &token));
        assert!(!csrf_matches("secret-a", ""));
    }
}
