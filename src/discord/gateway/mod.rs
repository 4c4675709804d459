//! The optional bot's Discord Gateway connection (docs: topics/gateway): one shard with the
//! guilds, server-members and moderation intents, reporting member removals, bans and member
//! updates (roles, server nickname and avatar), and roles created, renamed or deleted.
//!
//! `twilight-gateway` does the protocol: Hello, Identify, heartbeats, Resume after a dropped
//! connection, re-Identify after an invalid session, Discord's close codes. What it leaves to us:
//! a connection that cannot be re-established is retried here with capped exponential backoff
//! and jitter (keeping the session so it can still resume), and a refusal (bad token, intent not
//! enabled) stops the connection for good and shows in the status.

pub mod events;
pub mod role_events;
pub mod status;

pub use events::{EventKind, MemberEvent};
pub use role_events::RoleEvent;
pub use status::{ConnectionState, GatewayStatus, StatusSnapshot};

use futures_util::StreamExt as _;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio::sync::mpsc;
use twilight_gateway::error::ReceiveMessageErrorType;
use twilight_gateway::{CloseFrame, ConfigBuilder, Intents, Message, Shard, ShardId, ShardState};

/// First pause after a failed connection attempt.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest pause between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Where and as whom to connect.
#[derive(Clone)]
pub struct GatewaySettings {
    /// The bot token (without the `Bot ` prefix).
    pub token: SecretString,
    /// A Gateway URL other than Discord's (tests and `guildgate dev`).
    pub url: Option<String>,
}

/// What the connection tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A member event to act on.
    Member(MemberEvent),
    /// A role event to act on (role names in claims).
    Role(RoleEvent),
    /// A new session began (READY, not a resume): events may have been missed meanwhile.
    NewSession,
}

/// Why [`run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The receiver of signals is gone (shutting down or leadership lost).
    Stopped,
    /// Discord refused the bot (close code 4004 or 4014); retrying cannot help.
    Refused,
}

/// The intents needed: `GUILD_MEMBERS` (privileged "Server Members Intent") for member removals
/// and updates, `GUILD_MODERATION` for bans, `GUILDS` for role changes (role names in claims).
pub fn intents() -> Intents {
    Intents::GUILDS | Intents::GUILD_MEMBERS | Intents::GUILD_MODERATION
}

fn shard(settings: &GatewaySettings, resume: Option<(twilight_gateway::Session, String)>) -> Shard {
    let mut config = ConfigBuilder::new(settings.token.expose_secret().to_owned(), intents());
    if let Some(url) = &settings.url {
        config = config.proxy_url(url.trim_end_matches('/').to_owned());
    }
    if let Some((session, url)) = resume {
        config = config.session(session).resume_url(url);
    }
    Shard::with_config(ShardId::ONE, config.build())
}

/// Keeps the connection until `signals` is closed or Discord refuses the bot.
pub async fn run(
    settings: &GatewaySettings,
    status: &GatewayStatus,
    signals: &mpsc::Sender<Signal>,
) -> Ended {
    let mut shard = shard(settings, None);
    let mut failures: u32 = 0;
    status.set_state(ConnectionState::Connecting);
    loop {
        let item = tokio::select! {
            item = shard.next() => item,
            () = signals.closed() => {
                shard.close(CloseFrame::NORMAL);
                return Ended::Stopped;
            }
        };
        match item {
            Some(Ok(Message::Text(text))) => {
                failures = 0;
                if shard.state() == ShardState::Active {
                    status.set_state(ConnectionState::Connected);
                }
                let signal = if is_dispatch(&text, "READY") {
                    Some(Signal::NewSession)
                } else {
                    events::parse(&text)
                        .map(Signal::Member)
                        .or_else(|| role_events::parse(&text).map(Signal::Role))
                };
                if let Some(signal) = signal {
                    match &signal {
                        Signal::Member(e) => status.record_event(e.kind()),
                        Signal::Role(e) => status.record_event(e.kind()),
                        Signal::NewSession => {}
                    }
                    if signals.send(signal).await.is_err() {
                        shard.close(CloseFrame::NORMAL);
                        return Ended::Stopped;
                    }
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map(|f| f.code);
                if shard.state() == ShardState::FatallyClosed {
                    return refused(status, code);
                }
                tracing::warn!(close_code = ?code, "Discord Gateway connection closed; resuming");
                status.set_state(ConnectionState::Disconnected);
                status.record_reconnect();
            }
            Some(Err(e)) if matches!(e.kind(), ReceiveMessageErrorType::Reconnect) => {
                // twilight would retry on its own (2^n s, no jitter); we pace retries instead,
                // keeping the session so the next connection can still resume.
                status.set_state(ConnectionState::Disconnected);
                status.record_problem(format!("cannot reach the Discord Gateway: {e}"));
                tracing::warn!(error = %e, "cannot reach the Discord Gateway; retrying");
                let resume = shard
                    .session()
                    .cloned()
                    .zip(shard.resume_url().map(str::to_owned));
                failures = failures.saturating_add(1);
                tokio::select! {
                    () = tokio::time::sleep(backoff(failures)) => {}
                    () = signals.closed() => return Ended::Stopped,
                }
                shard = self::shard(settings, resume);
                status.set_state(ConnectionState::Connecting);
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "unreadable Gateway message skipped");
            }
            None => return refused(status, None),
        }
    }
}

fn refused(status: &GatewayStatus, code: Option<u16>) -> Ended {
    let why = match code {
        Some(4004) => "Discord refused the bot token (Gateway close code 4004)",
        Some(4014) => {
            "the bot lacks the Server Members Intent (Gateway close code 4014): enable it in the Developer Portal"
        }
        _ => "Discord closed the Gateway connection for good",
    };
    tracing::error!(close_code = ?code, "{why}; live membership is off until guildgate restarts or a reload (SIGHUP) brings a bot token Discord accepts");
    status.set_state(ConnectionState::Refused);
    status.record_problem(why);
    Ended::Refused
}

/// Whether `text` is the dispatch `name` (checked cheaply before parsing anything).
fn is_dispatch(text: &str, name: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(default, borrow)]
        t: Option<&'a str>,
    }
    text.contains(name) && serde_json::from_str::<Head<'_>>(text).is_ok_and(|h| h.t == Some(name))
}

/// Capped exponential backoff with full jitter (a random pause up to the cap), so many
/// processes or restarts do not reconnect in lockstep.
pub fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_START.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)));
    let cap = exp.min(BACKOFF_MAX);
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(millis / 2 + jitter(millis / 2 + 1))
}

/// A random number below `bound` (jitter needs no cryptographic randomness).
fn jitter(bound: u64) -> u64 {
    use rand::Rng;
    rand::thread_rng().gen_range(0..bound.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for failures in 1..40 {
            let d = backoff(failures);
            assert!(d <= BACKOFF_MAX, "{failures}: {d:?}");
            assert!(d >= BACKOFF_START / 2, "{failures}: {d:?}");
        }
        let samples: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(8)).collect();
        assert!(samples.len() > 1, "jittered");
    }

    #[test]
    fn ready_is_told_apart_from_other_dispatches() {
        assert!(is_dispatch(r#"{"op":0,"t":"READY","s":1,"d":{}}"#, "READY"));
        assert!(!is_dispatch(
            r#"{"op":0,"t":"RESUMED","s":3,"d":{}}"#,
            "READY"
        ));
        assert!(!is_dispatch(
            r#"{"op":0,"t":"X","d":{"n":"READY"}}"#,
            "READY"
        ));
    }
}
