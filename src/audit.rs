//! The audit log: security events as structured log lines under the one tracing target `audit`,
//! one line per event, every line with the same fields (`event`, `outcome`, `request_id`,
//! `client_id`, `user_id`, `source_ip`, `reason`), empty where an event has no such value.
//!
//! Every audit line in the crate goes through [`emit`], so the field names cannot drift and an
//! operator can route `target = "audit"` to its own sink. No field ever holds a token, secret,
//! code or cookie value: the events carry ids (client, Discord user, grant, key), never
//! credentials.

use std::fmt;
use std::net::IpAddr;

/// The tracing target of every audit line.
pub const TARGET: &str = "audit";

/// Where a request-driven event came from: the request id tracing-actix-web gave the request
/// (the same value as the request span's `request_id`) and the source address. Empty for
/// background jobs and the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// The request's id.
    pub request_id: Option<uuid::Uuid>,
    /// The client's address as guildgate sees it.
    pub source_ip: Option<IpAddr>,
}

impl RequestInfo {
    /// No request: a background job or an admin command.
    pub const NONE: RequestInfo = RequestInfo {
        request_id: None,
        source_ip: None,
    };
}

/// Which rules refused a person: the deployment's `[access]` or the app's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleLevel {
    /// `[access]`: no session may exist.
    Global,
    /// The app's rules.
    App,
}

/// A security event.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A person signed in with Discord and a session was opened.
    SignIn {
        /// The app the sign-in started from; `None` for the account page.
        client_id: Option<&'a str>,
        /// Their Discord id.
        user_id: &'a str,
    },
    /// The access rules refused a person (`reason` names the unmet rule).
    AccessDenied {
        /// The app; `None` when the global rules refused at sign-in before any app.
        client_id: Option<&'a str>,
        /// Their Discord id.
        user_id: &'a str,
        /// The unmet rule (`policy::Denial::as_str`).
        rule: &'static str,
        /// Whose rules.
        level: RuleLevel,
    },
    /// The person approved the consent page.
    ConsentGiven {
        /// The app.
        client_id: &'a str,
        /// Their Discord id.
        user_id: &'a str,
    },
    /// The person declined the consent page.
    ConsentDeclined {
        /// The app.
        client_id: &'a str,
        /// Their Discord id.
        user_id: &'a str,
    },
    /// Tokens were issued at `/token`.
    TokenIssued {
        /// The app.
        client_id: &'a str,
        /// Their Discord id.
        user_id: &'a str,
        /// `authorization_code` or `refresh_token`.
        grant_type: &'static str,
    },
    /// A rotated refresh token was presented again: its whole family was revoked.
    RefreshReuse {
        /// The app that presented it.
        client_id: &'a str,
        /// The grant's person, when the grant is still known.
        user_id: Option<&'a str>,
    },
    /// A client revoked a token (RFC 7009).
    Revocation {
        /// The app.
        client_id: &'a str,
        /// The token's person, when known.
        user_id: Option<&'a str>,
        /// `refresh_token` (the whole grant) or `access_token`.
        kind: &'static str,
    },
    /// A person signed out (RP-initiated logout): their session and its grants ended.
    Logout {
        /// The app named by the logout request, if any.
        client_id: Option<&'a str>,
        /// Their Discord id.
        user_id: &'a str,
    },
    /// A back-channel logout could not be delivered and was given up.
    BackchannelAbandoned {
        /// The app that was not told.
        client_id: &'a str,
        /// The person it was about.
        user_id: &'a str,
    },
    /// An admin command changed security state (`users revoke`, `users forget-consent`).
    Admin {
        /// The command, e.g. `users revoke`.
        action: &'static str,
        /// The person it acted on.
        user_id: &'a str,
        /// The app it acted on, if any.
        client_id: Option<&'a str>,
        /// Whether it changed anything (`ok`) or found nothing to change (`noop`).
        changed: bool,
    },
    /// A new signing key was added (`keys rotate`, or the schedule pre-publishing one).
    KeyRotation {
        /// `keys rotate` or `schedule`.
        by: &'static str,
        /// The new key's id (RFC 7638 thumbprint) or file.
        key: &'a str,
    },
    /// A signing key was revoked (`keys revoke`): no longer published, tokens it signed refused.
    KeyRevoked {
        /// The revoked key's id (RFC 7638 thumbprint).
        key: &'a str,
    },
    /// Discord says the person no longer authorizes guildgate: everything of theirs ended.
    DiscordAuthorizationGone {
        /// Their Discord id.
        user_id: &'a str,
        /// What Discord answered.
        reason: &'static str,
    },
    /// A service token was issued (client credentials): no person behind it.
    ServiceTokenIssued {
        /// The app, which is also the token's subject.
        client_id: &'a str,
    },
    /// A person approved a device sign-in on `/device`.
    DeviceApproved {
        /// The app on the device.
        client_id: &'a str,
        /// Their Discord id.
        user_id: &'a str,
    },
    /// A device sign-in was refused: declined by the person, refused by the access rules, or
    /// its user code was entered too often.
    DeviceDenied {
        /// The app on the device.
        client_id: &'a str,
        /// The person, when one answered.
        user_id: Option<&'a str>,
        /// `declined`, `access_rules` or `too_many_entries`.
        reason: &'static str,
    },
    /// A one-time JWT came back: a client assertion or a DPoP proof replayed.
    ReplayRefused {
        /// The app, when known.
        client_id: Option<&'a str>,
        /// `client_assertion` or `dpop_proof`.
        kind: &'static str,
    },
}

impl Event<'_> {
    /// The `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            Event::SignIn { .. } => "sign_in",
            Event::AccessDenied { .. } => "access_denied",
            Event::ConsentGiven { .. } => "consent_given",
            Event::ConsentDeclined { .. } => "consent_declined",
            Event::TokenIssued { .. } => "token_issued",
            Event::RefreshReuse { .. } => "refresh_reuse",
            Event::Revocation { .. } => "revocation",
            Event::Logout { .. } => "logout",
            Event::BackchannelAbandoned { .. } => "backchannel_abandoned",
            Event::Admin { .. } => "admin",
            Event::KeyRotation { .. } => "key_rotation",
            Event::KeyRevoked { .. } => "key_revoked",
            Event::DiscordAuthorizationGone { .. } => "discord_authorization_gone",
            Event::ServiceTokenIssued { .. } => "service_token_issued",
            Event::DeviceApproved { .. } => "device_approved",
            Event::DeviceDenied { .. } => "device_denied",
            Event::ReplayRefused { .. } => "replay_refused",
        }
    }

    /// The `outcome` field: what happened to the person's access.
    fn outcome(&self) -> &'static str {
        match self {
            Event::SignIn { .. }
            | Event::ConsentGiven { .. }
            | Event::TokenIssued { .. }
            | Event::ServiceTokenIssued { .. }
            | Event::DeviceApproved { .. }
            | Event::KeyRotation { .. } => "ok",
            Event::AccessDenied { .. }
            | Event::ConsentDeclined { .. }
            | Event::DeviceDenied { .. }
            | Event::ReplayRefused { .. } => "denied",
            Event::RefreshReuse { .. }
            | Event::DiscordAuthorizationGone { .. }
            | Event::KeyRevoked { .. } => "revoked",
            Event::Revocation { .. } | Event::Logout { .. } => "ended",
            Event::BackchannelAbandoned { .. } => "failed",
            Event::Admin { changed: true, .. } => "ok",
            Event::Admin { changed: false, .. } => "noop",
        }
    }

    fn client_id(&self) -> Option<&str> {
        match *self {
            Event::ConsentGiven { client_id, .. }
            | Event::ConsentDeclined { client_id, .. }
            | Event::TokenIssued { client_id, .. }
            | Event::RefreshReuse { client_id, .. }
            | Event::Revocation { client_id, .. }
            | Event::ServiceTokenIssued { client_id }
            | Event::DeviceApproved { client_id, .. }
            | Event::DeviceDenied { client_id, .. }
            | Event::BackchannelAbandoned { client_id, .. } => Some(client_id),
            Event::ReplayRefused { client_id, .. }
            | Event::SignIn { client_id, .. }
            | Event::AccessDenied { client_id, .. }
            | Event::Logout { client_id, .. }
            | Event::Admin { client_id, .. } => client_id,
            Event::KeyRotation { .. }
            | Event::KeyRevoked { .. }
            | Event::DiscordAuthorizationGone { .. } => None,
        }
    }

    fn user_id(&self) -> Option<&str> {
        match *self {
            Event::SignIn { user_id, .. }
            | Event::AccessDenied { user_id, .. }
            | Event::ConsentGiven { user_id, .. }
            | Event::ConsentDeclined { user_id, .. }
            | Event::TokenIssued { user_id, .. }
            | Event::Logout { user_id, .. }
            | Event::BackchannelAbandoned { user_id, .. }
            | Event::Admin { user_id, .. }
            | Event::DeviceApproved { user_id, .. }
            | Event::DiscordAuthorizationGone { user_id, .. } => Some(user_id),
            Event::RefreshReuse { user_id, .. }
            | Event::Revocation { user_id, .. }
            | Event::DeviceDenied { user_id, .. } => user_id,
            Event::KeyRotation { .. }
            | Event::KeyRevoked { .. }
            | Event::ServiceTokenIssued { .. }
            | Event::ReplayRefused { .. } => None,
        }
    }

    /// The `reason` field: the unmet rule, the grant type, the command, … (never a secret).
    fn reason(&self) -> Reason<'_> {
        match *self {
            Event::AccessDenied { rule, level, .. } => Reason::Rule(level, rule),
            Event::TokenIssued { grant_type, .. } => Reason::Text(grant_type),
            Event::Revocation { kind, .. } => Reason::Text(kind),
            Event::Admin { action, .. } => Reason::Text(action),
            Event::KeyRotation { by, key } => Reason::Key(by, key),
            Event::KeyRevoked { key } => Reason::Key("keys revoke", key),
            Event::DiscordAuthorizationGone { reason, .. } => Reason::Text(reason),
            Event::ServiceTokenIssued { .. } => Reason::Text("client_credentials"),
            Event::DeviceApproved { .. } => Reason::Text("device_code"),
            Event::DeviceDenied { reason, .. } => Reason::Text(reason),
            Event::ReplayRefused { kind, .. } => Reason::Text(kind),
            _ => Reason::Text(""),
        }
    }

    /// Events an operator should notice among the ordinary ones are logged at `WARN`.
    fn is_alarming(&self) -> bool {
        matches!(
            self,
            Event::RefreshReuse { .. }
                | Event::BackchannelAbandoned { .. }
                | Event::DiscordAuthorizationGone { .. }
                | Event::ReplayRefused { .. }
                | Event::KeyRevoked { .. }
        )
    }

    /// The human-readable message of the line.
    fn message(&self) -> &'static str {
        match self {
            Event::SignIn { .. } => "signed in with Discord",
            Event::AccessDenied { .. } => "access refused by the access rules",
            Event::ConsentGiven { .. } => "consent given",
            Event::ConsentDeclined { .. } => "consent declined",
            Event::TokenIssued { .. } => "tokens issued",
            Event::RefreshReuse { .. } => "refresh token reused; its grant was revoked",
            Event::Revocation { .. } => "token revoked by the client",
            Event::Logout { .. } => "signed out; the session and its grants ended",
            Event::BackchannelAbandoned { .. } => {
                "back-channel logout abandoned after its last attempt"
            }
            Event::Admin { .. } => "admin command",
            Event::KeyRotation { .. } => "new signing key",
            Event::KeyRevoked { .. } => {
                "signing key revoked: no longer published; tokens it signed are refused"
            }
            Event::DiscordAuthorizationGone { .. } => {
                "Discord no longer authorizes guildgate for this person; every session and grant ended"
            }
            Event::ServiceTokenIssued { .. } => "service token issued",
            Event::DeviceApproved { .. } => "device sign-in approved",
            Event::DeviceDenied { .. } => "device sign-in refused",
            Event::ReplayRefused { .. } => "a one-time JWT was presented again and refused",
        }
    }
}

/// The `reason` value, written without allocating.
enum Reason<'a> {
    Text(&'a str),
    Rule(RuleLevel, &'static str),
    Key(&'static str, &'a str),
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Text(text) => f.write_str(text),
            Reason::Rule(RuleLevel::Global, rule) => write!(f, "global:{rule}"),
            Reason::Rule(RuleLevel::App, rule) => write!(f, "app:{rule}"),
            Reason::Key(by, key) => write!(f, "{by}:{key}"),
        }
    }
}

/// An optional value as a field: the value, or nothing.
struct Opt<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for Opt<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => Ok(()),
        }
    }
}

/// Writes one audit line for `event`.
pub fn emit(request: &RequestInfo, event: &Event<'_>) {
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                target: "audit",
                $level,
                // Display, not Debug: the readable format then writes `event=sign_in`
                // (unquoted), which is what `grep event=sign_in` looks for.
                event = %event.name(),
                outcome = %event.outcome(),
                request_id = %Opt(request.request_id),
                client_id = %Opt(event.client_id()),
                user_id = %Opt(event.user_id()),
                source_ip = %Opt(request.source_ip),
                reason = %event.reason(),
                "{}",
                event.message()
            )
        };
    }
    if event.is_alarming() {
        line!(tracing::Level::WARN);
    } else {
        line!(tracing::Level::INFO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_names_whose_rule_it_was() {
        let event = Event::AccessDenied {
            client_id: Some("wiki"),
            user_id: "1",
            rule: "allowed_guilds",
            level: RuleLevel::App,
        };
        assert_eq!(event.reason().to_string(), "app:allowed_guilds");
        assert_eq!(event.outcome(), "denied");
        assert_eq!(event.client_id(), Some("wiki"));
    }

    #[test]
    fn missing_values_are_empty() {
        assert_eq!(Opt::<u8>(None).to_string(), "");
        assert_eq!(Opt(Some(7)).to_string(), "7");
    }
}
