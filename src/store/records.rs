//! The records the store keeps and the outcomes of its atomic operations.

use crate::domain::{
    ClientId, DiscordId, GrantId, Jkt, PkceChallenge, PkceVerifier, Scopes, SessionId, TokenHash,
};
use time::OffsetDateTime;

/// A person as Discord last described them; the id is the identity, never the email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// Discord snowflake, the `sub`.
    pub id: DiscordId,
    /// Discord `username`.
    pub username: String,
    /// Discord `global_name` (display name).
    pub global_name: Option<String>,
    /// Avatar hash, if any.
    pub avatar: Option<String>,
    /// Email, when the `email` scope was granted.
    pub email: Option<String>,
    /// Discord's `verified` flag for the email.
    pub email_verified: bool,
    /// Discord `locale`.
    pub locale: Option<String>,
    /// When this profile was last refreshed from Discord.
    pub updated_at: OffsetDateTime,
}

/// A login sent to Discord and not yet back: keyed by SHA-256 of the `state` we sent.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamLogin {
    /// SHA-256 of the `state` parameter sent to Discord.
    pub state_hash: TokenHash,
    /// SHA-256 of the browser-binding cookie set alongside.
    pub binding_hash: TokenHash,
    /// The PKCE verifier for the Discord code exchange.
    pub pkce_verifier: PkceVerifier,
    /// The original `/authorize` request, serialized (JSON), to finish after the callback.
    pub request: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// After this the callback is refused.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for UpstreamLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLogin")
            .field("state_hash", &self.state_hash)
            .field("pkce_verifier", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The cap a new pending login is inserted under (so no script can fill the table).
#[derive(Debug, Clone, Copy)]
pub struct PendingLoginCap<'a> {
    /// Where the login comes from (the source address as limits key it).
    pub source: &'a str,
    /// At most this many unexpired pending logins from one source.
    pub max_per_source: u32,
    /// The binding of the browser's previous pending login, which this one replaces.
    pub replaces: Option<&'a TokenHash>,
}

/// An SSO session: the browser holds the secret, ID tokens carry the public `id` as `sid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public session id (`sid` claim); random, not derived from the secret.
    pub id: SessionId,
    /// SHA-256 of the cookie value.
    pub secret_hash: TokenHash,
    /// The Discord id of the person.
    pub user_id: DiscordId,
    /// When the person last authenticated at Discord (`auth_time`).
    pub auth_time: OffsetDateTime,
    /// When the session was opened.
    pub created_at: OffsetDateTime,
    /// Absolute end of the session.
    pub expires_at: OffsetDateTime,
    /// Last time the session was used (for idle timeout).
    pub last_seen_at: OffsetDateTime,
    /// The browser it was opened from, as the person may recognise it on the account page.
    pub device: SessionDevice,
}

/// What a session remembers of the browser that opened it (shown on the account page only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionDevice {
    /// The `User-Agent` header, cut to [`SessionDevice::MAX_USER_AGENT`] bytes.
    pub user_agent: Option<String>,
    /// The source address as guildgate saw it (after trusted proxies).
    pub ip: Option<String>,
}

impl SessionDevice {
    /// Longest User-Agent kept: enough to name a browser, too short to store a payload.
    pub const MAX_USER_AGENT: usize = 512;

    /// A device from what the request showed; an over-long User-Agent is cut on a char boundary.
    pub fn new(user_agent: Option<&str>, ip: Option<String>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut end = ua.len().min(Self::MAX_USER_AGENT);
            while !ua.is_char_boundary(end) {
                end -= 1;
            }
            ua[..end].to_owned()
        });
        Self { user_agent, ip }
    }
}

/// A remembered consent (client `consent = "once"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    /// The client consented to.
    pub client_id: ClientId,
    /// The scopes consented to.
    pub scopes: Scopes,
    /// When.
    pub granted_at: OffsetDateTime,
}

/// When a client last signed a person in (its newest grant still kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSignIn {
    /// The client.
    pub client_id: ClientId,
    /// The newest grant's creation time.
    pub last_sign_in: OffsetDateTime,
}

/// A session that was just ended, with the clients that took part (for back-channel logout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndedSession {
    /// The session as it was.
    pub session: SessionRecord,
    /// Client ids recorded in the session, sorted.
    pub clients: Vec<ClientId>,
}

/// A completed Discord sign-in's writes (`Store::save_sign_in`): the person's profile, the
/// membership snapshot just taken, their sealed Discord tokens when kept (`None` leaves stored
/// tokens as they are), and the new SSO session.
#[derive(Clone, Copy)]
pub struct NewSignIn<'a> {
    /// The person as Discord described them.
    pub user: &'a UserRecord,
    /// Their membership, just fetched.
    pub membership: &'a MembershipSnapshot,
    /// Their Discord tokens, sealed, when kept.
    pub tokens: Option<&'a StoredUpstreamTokens>,
    /// The new session.
    pub session: &'a SessionRecord,
}

/// An issued authorization code, bound to everything RFC 6749 §4.1.3 and RFC 7636 require.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthCodeRecord {
    /// SHA-256 of the code.
    pub code_hash: TokenHash,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The exact redirect URI of the authorization request.
    pub redirect_uri: String,
    /// The person.
    pub user_id: DiscordId,
    /// The SSO session it came from.
    pub session_id: SessionId,
    /// The grant (token family) that redeeming it creates; revoked if the code is replayed.
    pub grant_id: GrantId,
    /// Granted scopes.
    pub scopes: Scopes,
    /// The `nonce` of the request, echoed in the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge, when the request had one.
    pub code_challenge: Option<PkceChallenge>,
    /// The DPoP key the request named (`dpop_jkt`, RFC 9449 §10).
    pub dpop_jkt: Option<Jkt>,
    /// `auth_time` for the ID token.
    pub auth_time: OffsetDateTime,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// After this it is refused.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for AuthCodeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCodeRecord")
            .field("client_id", &self.client_id)
            .field("grant_id", &self.grant_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A code spent by its first use, read in the same trip as the person it was issued for.
#[derive(Debug, PartialEq, Eq)]
pub struct SpentCode {
    /// The code as issued.
    pub code: AuthCodeRecord,
    /// Its person (a code goes with its person: they are deleted together).
    pub person: UserRecord,
}

/// What a client presents for a code, and the grant the code then becomes: the terms of a
/// redemption in one trip (`Store::redeem_auth_code`), written only when every check holds.
#[derive(Clone, Copy, Debug)]
pub struct CodeExchange<'a> {
    /// The client redeeming the code.
    pub client_id: &'a ClientId,
    /// The `redirect_uri` it presents.
    pub redirect_uri: &'a str,
    /// The challenge the presented `code_verifier` satisfies (`None`: no verifier).
    pub code_challenge: Option<&'a PkceChallenge>,
    /// The key of the request's DPoP proof.
    pub proof: Option<&'a Jkt>,
    /// The client may be granted `offline_access`: a code asking for it is left to the full
    /// path, since its grant outlives the session.
    pub offline_possible: bool,
    /// The grant's absolute end.
    pub grant_expires_at: OffsetDateTime,
    /// The DPoP key the grant's refresh tokens are bound to.
    pub grant_dpop_jkt: Option<&'a Jkt>,
    /// The grant's first refresh token, if it has one.
    pub refresh: Option<&'a NewRefreshToken>,
}

/// What presenting a code did.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: the code is now spent; the caller still checks expiry and bindings.
    Redeemed(Box<SpentCode>),
    /// The code was already spent; its grant has been revoked (and that revocation committed).
    Replayed {
        /// The revoked grant.
        grant_id: GrantId,
    },
    /// No such code.
    Unknown,
}

/// A grant: one token family issued to one client for one person (RFC 9700 §4.14 "family").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    /// Random id; access tokens carry it so revocation reaches them.
    pub id: GrantId,
    /// The client.
    pub client_id: ClientId,
    /// The person.
    pub user_id: DiscordId,
    /// The SSO session it was issued under, if any.
    pub session_id: Option<SessionId>,
    /// Granted scopes.
    pub scopes: Scopes,
    /// `auth_time` kept across refreshes.
    pub auth_time: OffsetDateTime,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// Absolute end of the family (refresh token lifetime).
    pub expires_at: OffsetDateTime,
    /// Set when revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// The DPoP key a public client's refresh tokens are bound to (RFC 9449 §5): a refresh
    /// needs a proof signed with it.
    pub dpop_jkt: Option<Jkt>,
}

/// A refresh token to store: only its hash and idle expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// SHA-256 of the token.
    pub token_hash: TokenHash,
    /// Idle expiry of this token (the grant's absolute expiry still applies).
    pub expires_at: OffsetDateTime,
}

/// What presenting a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The old token is spent and the new one stored; here is the (still active) grant.
    Rotated(GrantRecord),
    /// The token had already been rotated: the whole grant is now revoked (committed).
    Reused {
        /// The revoked grant.
        grant_id: GrantId,
    },
    /// Unknown, another client's, expired, or its grant is revoked/expired/its session ended.
    Invalid,
}

/// One indexed check for a presented access token (RFC 9068 JWT already verified by signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessCheck {
    /// The grant is live, its session (if any) not ended, and the `jti` not revoked.
    Active {
        /// The grant's person (the Discord id, even when the token's `sub` is pairwise).
        user_id: DiscordId,
    },
    /// Anything else.
    Inactive,
}

/// A live refresh token's grant and the grant's person, read together for a refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshHolder {
    /// The (live) grant the token belongs to.
    pub grant: GrantRecord,
    /// The grant's person; `None` when that row is gone.
    pub user: Option<UserRecord>,
}

/// A refresh done in one trip: the grant (its token just rotated), its person and their
/// membership snapshot (`Store::rotate_refresh_token_fresh`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreshRotation {
    /// The live grant.
    pub grant: GrantRecord,
    /// The grant's person.
    pub user: UserRecord,
    /// Their membership snapshot, when one was taken.
    pub membership: Option<MembershipSnapshot>,
}

/// The person behind a live access token, with their membership snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHolder {
    /// The grant's person.
    pub user: UserRecord,
    /// Their last membership snapshot, if one was taken.
    pub membership: Option<MembershipSnapshot>,
}

/// A back-channel logout token waiting to be POSTed to a client (OIDC Back-Channel Logout §2.5).
#[derive(Clone, PartialEq, Eq)]
pub struct LogoutDelivery {
    /// Random id.
    pub id: String,
    /// The receiving client.
    pub client_id: ClientId,
    /// The ended session, when the logout is about one.
    pub session_id: Option<SessionId>,
    /// The person.
    pub user_id: DiscordId,
    /// The client's `backchannel_logout_uri`.
    pub uri: String,
    /// The logout token's claims as JSON; signed afresh at each attempt so `iat`/`exp` stay
    /// current across retries and key rotation.
    pub logout_token: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: OffsetDateTime,
    /// When it was queued.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for LogoutDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutDelivery")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// The last guild/role snapshot taken from Discord for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipSnapshot {
    /// JSON written and read by the membership code (opaque to the store).
    pub snapshot: String,
    /// When Discord was asked.
    pub fetched_at: OffsetDateTime,
}

/// A person's Discord tokens, encrypted by the caller (AES-256-GCM); opaque to the store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredUpstreamTokens {
    /// Nonce + ciphertext.
    pub ciphertext: Vec<u8>,
    /// When the Discord access token inside expires.
    pub access_expires_at: OffsetDateTime,
}

impl std::fmt::Debug for StoredUpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUpstreamTokens")
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}
