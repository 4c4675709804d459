//! Config reload without a restart (SIGHUP, `guildgate reload`): re-reads the config file and
//! the environment, validates the whole result, and only then puts clients, access rules,
//! groups, lifetimes and limits in force. A bad file changes nothing. Settings a running process
//! cannot change (listen address, database, keys folder, the Discord application's id and
//! URLs, …) keep their start-up values and are reported as needing a restart. Discord's client
//! secret and the bot token change too, but only once Discord accepts the new one
//! ([`apply_discord_secrets`]); a refused one is reported and the old one stays in use.

use crate::config::{Problem, Settings};
use crate::discord::DiscordError;
use crate::state::{AppState, Live};
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;

/// What a successful reload did.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// Keys that changed but only take effect after a restart (their old values stay).
    pub needs_restart: Vec<&'static str>,
    /// Number of registered clients now in force.
    pub clients: usize,
    /// Discord secrets that changed: in use once Discord accepts them ([`apply_discord_secrets`]).
    pub discord: NewDiscordSecrets,
}

/// `[discord]` secrets a reload found changed; `None` where nothing changed.
#[derive(Debug, Default)]
pub struct NewDiscordSecrets {
    /// `discord.client_secret`.
    pub client_secret: Option<SecretString>,
    /// `discord.bot.token` (replaced only where a bot was configured and still is).
    pub bot_token: Option<SecretString>,
}

/// What became of one new Discord secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    /// It did not change.
    Unchanged,
    /// Discord accepted it: it is in use.
    Accepted,
    /// Discord refused it (its answer): the previous one stays in use.
    Refused(String),
    /// Discord could not be asked (why): the previous one stays in use; reload again.
    Unchecked(String),
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file or environment could not be read at all (syntax, wrong type).
    #[error("{0}")]
    Unreadable(String),
    /// The configuration was read and has these problems (unknown keys included).
    #[error("{} problem(s) in the new configuration", .0.len())]
    Invalid(Vec<Problem>),
}

/// Reloads from `file` and the process environment; logs the outcome (every problem on
/// failure, every restart-only change on success).
pub fn reload(state: &AppState, file: Option<&Path>) -> Result<Reloaded, ReloadError> {
    reload_with(state, file, std::env::vars())
}

/// As [`reload`], with the environment given explicitly (tests).
pub fn reload_with(
    state: &AppState,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Reloaded, ReloadError> {
    let outcome = apply(state, file, env);
    match &outcome {
        Ok(done) => {
            for key in &done.needs_restart {
                tracing::warn!(
                    key,
                    "configuration reloaded without this change: it needs a restart"
                );
            }
            tracing::info!(clients = done.clients, "configuration reloaded");
        }
        Err(ReloadError::Unreadable(why)) => {
            tracing::error!(problem = %why, "configuration not reloaded; the running one stays");
        }
        Err(ReloadError::Invalid(problems)) => {
            for problem in problems {
                tracing::error!(key = %problem.key, problem = %problem.message, "configuration problem");
            }
            tracing::error!(
                problems = problems.len(),
                "configuration not reloaded; the running one stays"
            );
        }
    }
    outcome
}

fn apply(
    state: &AppState,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Reloaded, ReloadError> {
    let mut new =
        Settings::load_with(file, env).map_err(|e| ReloadError::Unreadable(e.to_string()))?;
    // The file as written must be valid on its own, restart-only keys included: the next
    // start will read exactly it.
    new.validate().map_err(ReloadError::Invalid)?;
    let discord = new_discord_secrets(state, &new);
    let needs_restart = keep_restart_only(&mut new, &state.settings);
    // With the running values for the restart-only keys it may still fail (say, new clients
    // that need an encryption key the running process was started without).
    let config = new.validate().map_err(ReloadError::Invalid)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let clients = config.clients.len();
    let previous = state.clients();
    state.replace_live(Live::new(config, Some(&previous)));
    Ok(Reloaded {
        needs_restart,
        clients,
        discord,
    })
}

/// The client secret and bot token of `new` that differ from those in use. Only for the same
/// Discord application (a new `client_id` needs a restart, and its secret with it), and only a
/// bot token replacing another (adding or removing the bot needs a restart).
fn new_discord_secrets(state: &AppState, new: &Settings) -> NewDiscordSecrets {
    let running = &state.settings.discord;
    let secret = &new.discord.client_secret;
    let token = &new.discord.bot.token;
    NewDiscordSecrets {
        client_secret: (new.discord.client_id == running.client_id
            && !state.discord.uses_client_secret(secret))
        .then(|| secret.clone()),
        bot_token: (state.discord.has_bot()
            && !token.expose_secret().is_empty()
            && !state.discord.uses_bot_token(token))
        .then(|| token.clone()),
    }
}

/// Tries each new Discord secret with Discord and uses the ones it accepts; logs the outcome of
/// each (a refusal at `ERROR`, naming the setting and what to do). The previous secret stays in
/// use until its successor works.
pub async fn apply_discord_secrets(
    state: &AppState,
    new: NewDiscordSecrets,
) -> (SecretChange, SecretChange) {
    let client_secret = match new.client_secret {
        None => SecretChange::Unchanged,
        Some(secret) => {
            let checked = state.discord.check_client_secret(&secret).await;
            let change = use_if_accepted(checked, || state.discord.use_client_secret(&secret));
            report(
                "discord.client_secret",
                "GUILDGATE__DISCORD__CLIENT_SECRET",
                "the client secret on the OAuth2 page",
                &change,
            );
            change
        }
    };
    let bot_token = match new.bot_token {
        None => SecretChange::Unchanged,
        Some(token) => {
            let checked = state.discord.check_bot_token_candidate(&token).await;
            let change =
                use_if_accepted(checked.map(|_| ()), || state.discord.use_bot_token(&token));
            report(
                "discord.bot.token",
                "GUILDGATE__DISCORD__BOT__TOKEN",
                "the token on the Bot page",
                &change,
            );
            change
        }
    };
    (client_secret, bot_token)
}

fn use_if_accepted(
    checked: Result<(), DiscordError>,
    put_in_use: impl FnOnce() -> Result<(), DiscordError>,
) -> SecretChange {
    match checked.and_then(|()| put_in_use()) {
        Ok(()) => SecretChange::Accepted,
        Err(e) if e.is_temporary() => SecretChange::Unchecked(e.to_string()),
        Err(e) => SecretChange::Refused(e.to_string()),
    }
}

fn report(key: &'static str, env: &'static str, portal: &'static str, change: &SecretChange) {
    match change {
        SecretChange::Unchanged => {}
        SecretChange::Accepted => {
            tracing::info!(
                key,
                "Discord accepted the new secret; it is in use from now on"
            );
        }
        SecretChange::Refused(answer) => tracing::error!(
            key,
            answer = %answer,
            "Discord refused the new {key} ({env}); the previous one stays in use. Copy {portal} of your application in the Discord Developer Portal again, then reload"
        ),
        SecretChange::Unchecked(why) => tracing::warn!(
            key,
            reason = %why,
            "cannot check the new {key} with Discord now; the previous one stays in use: reload again once Discord answers"
        ),
    }
}

/// A setting a running process cannot change, and how to read it for comparison.
struct RestartOnly {
    key: &'static str,
    read: fn(&Settings) -> String,
    keep: fn(&mut Settings, &Settings),
}

/// Everything that is bound, connected, loaded or published once at start-up. Values are only
/// compared, never logged (some are secrets).
const RESTART_ONLY: &[RestartOnly] = &[
    RestartOnly {
        key: "issuer",
        read: |s| s.issuer.clone(),
        keep: |n, o| n.issuer = o.issuer.clone(),
    },
    RestartOnly {
        key: "server",
        read: |s| format!("{:?}", s.server),
        keep: |n, o| n.server = o.server.clone(),
    },
    RestartOnly {
        key: "log",
        read: |s| format!("{:?}", s.log),
        keep: |n, o| n.log = o.log.clone(),
    },
    RestartOnly {
        key: "database",
        read: |s| {
            format!(
                "{} {} {}",
                s.database.url.expose_secret(),
                s.database.max_connections,
                s.database.connect_timeout
            )
        },
        keep: |n, o| n.database = o.database.clone(),
    },
    RestartOnly {
        key: "keys.dir",
        read: |s| s.keys.dir.display().to_string(),
        keep: |n, o| n.keys.dir = o.keys.dir.clone(),
    },
    RestartOnly {
        // Its secrets are compared and replaced apart (`new_discord_secrets`): `Debug` shows
        // them redacted. Whether a bot is configured at all needs a restart.
        key: "discord",
        read: |s| {
            format!(
                "{:?} bot={}",
                s.discord,
                !s.discord.bot.token.expose_secret().is_empty()
            )
        },
        keep: |n, o| n.discord = o.discord.clone(),
    },
    RestartOnly {
        key: "secrets",
        read: |s| {
            let listed: Vec<&str> = s
                .secrets
                .encryption_keys
                .iter()
                .map(ExposeSecret::expose_secret)
                .collect();
            format!("{} {listed:?}", s.secrets.encryption_key.expose_secret())
        },
        keep: |n, o| n.secrets = o.secrets.clone(),
    },
    RestartOnly {
        key: "tokens.access_token_alg",
        read: |s| s.tokens.access_token_alg.clone(),
        keep: |n, o| n.tokens.access_token_alg = o.tokens.access_token_alg.clone(),
    },
    RestartOnly {
        // The pages (branding, template overrides, their CSP hashes) are built at start-up.
        key: "ui",
        read: |s| format!("{:?}", s.ui),
        keep: |n, o| n.ui = o.ui.clone(),
    },
    RestartOnly {
        key: "session.cookie_name",
        read: |s| s.session.cookie_name.clone(),
        keep: |n, o| n.session.cookie_name = o.session.cookie_name.clone(),
    },
];

/// Puts the running values of restart-only settings into `new`; the keys that differed.
fn keep_restart_only(new: &mut Settings, running: &Settings) -> Vec<&'static str> {
    let mut changed = Vec::new();
    for setting in RESTART_ONLY {
        if (setting.read)(new) != (setting.read)(running) {
            changed.push(setting.key);
        }
        (setting.keep)(new, running);
    }
    changed
}
