//! The bodies of the CLI commands other than `serve` and `dev`: migrate, backup, hash-secret,
//! sessions, users, check-config, reload (and serve's pid file); and the exit status an error
//! maps to. The key commands are in `cli/keys.rs`, the admin listings in `cli/admin.rs`.

pub mod admin;
pub mod keys;
pub mod reencrypt;

use crate::audit;
use crate::config::Settings;
use crate::startup::StartupError;
use crate::state::Clock;
use crate::store;
use anyhow::Context;
use secrecy::ExposeSecret;
use std::io::{BufRead, IsTerminal};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Exit status: the command did what it was asked.
pub const EXIT_OK: u8 = 0;
/// Exit status: the configuration, the arguments or the input are wrong; fix them first.
pub const EXIT_INVALID: u8 = 1;
/// Exit status: a dependency is unavailable (the database cannot be reached, the listen port
/// is taken); running again later may work.
pub const EXIT_UNAVAILABLE: u8 = 2;

/// The exit status for a failed command: [`EXIT_UNAVAILABLE`] when any error in the chain is
/// a dependency that is only unavailable, [`EXIT_INVALID`] otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let unavailable = error.chain().any(|e| {
        e.downcast_ref::<StartupError>()
            .is_some_and(StartupError::is_unavailable)
            || e.downcast_ref::<store::StoreError>()
                .is_some_and(store::StoreError::is_unavailable)
    });
    if unavailable {
        EXIT_UNAVAILABLE
    } else {
        EXIT_INVALID
    }
}

/// `guildgate migrate`: applies pending migrations to the configured database, waiting up to
/// `database.connect_timeout` for it to come up. With `dry_run`, lists them and changes nothing.
pub async fn migrate(settings: &Settings, dry_run: bool) -> anyhow::Result<()> {
    let url = settings.database.url.expose_secret();
    let wait = settings
        .database
        .connect_timeout()
        .map_err(|problem| StartupError::Config(vec![problem]))?;
    if dry_run {
        return migrate_dry_run(url, wait).await;
    }
    let store = store::connect_waiting(url, 1, wait).await?;
    store.migrate().await?;
    println!("migrations applied to {}", store::redact_url(url));
    Ok(())
}

/// `guildgate migrate --dry-run`: what `migrate` (or `serve`) would apply, and nothing more (a
/// SQLite file that does not exist yet is not created).
async fn migrate_dry_run(url: &str, wait: std::time::Duration) -> anyhow::Result<()> {
    let shown = store::redact_url(url);
    let status = if store::sqlite_file_missing(url) {
        store::MigrationStatus {
            pending: store::known_migrations(url)?,
            ..Default::default()
        }
    } else {
        store::connect_waiting(url, 1, wait)
            .await?
            .migration_status()
            .await?
    };
    if !status.unknown.is_empty() {
        println!(
            "{shown} has migrations this guildgate does not know ({:?}): a newer release migrated it; this one would refuse to start on it",
            status.unknown
        );
    }
    if status.pending.is_empty() {
        println!(
            "{shown} is up to date (schema version {}): nothing would run",
            status.applied.last().copied().unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "would apply {} migration(s) to {shown}:",
        status.pending.len()
    );
    for (version, description) in &status.pending {
        println!("  {version:04} {description}");
    }
    Ok(())
}

/// `guildgate backup PATH`: a consistent copy of the live SQLite database (see
/// `store::backup`), and what it holds.
pub fn backup(settings: &Settings, to: &std::path::Path) -> anyhow::Result<()> {
    let url = settings.database.url.expose_secret();
    let backup = store::backup::backup_sqlite(url, to)?;
    println!(
        "backed up {} to {} ({} KiB): schema version {}, {} people, {} grants",
        store::redact_url(url),
        backup.path.display(),
        backup.bytes.div_ceil(1024),
        backup.schema_version,
        backup.people,
        backup.grants
    );
    println!(
        "keep it with a copy of keys.dir and of [secrets]: tokens in it verify only with those keys, and kept Discord tokens open only with those secrets"
    );
    Ok(())
}

/// `guildgate check-config`: "configuration is valid" on stdout, warnings on stderr; every
/// problem, one per line, in the error.
pub fn check_config(settings: &Settings) -> anyhow::Result<()> {
    let config = settings.validate().map_err(StartupError::Config)?;
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    println!("configuration is valid");
    Ok(())
}

/// `guildgate sessions list [--user ID]`.
pub async fn sessions_list(settings: Settings, user: Option<&str>) -> anyhow::Result<()> {
    let user = user
        .map(crate::domain::DiscordId::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let state = crate::startup::build_state(settings, Clock::default()).await?;
    let now = state.clock.now();
    let sessions = state.store.list_sessions(user.as_ref(), now).await?;
    println!(
        "{:<34} {:<21} {:<22} {:<22} ENDS",
        "SESSION (sid)", "USER", "SIGNED IN", "LAST USED"
    );
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    for s in &sessions {
        println!(
            "{:<34} {:<21} {:<22} {:<22} {}",
            s.id,
            s.user_id,
            fmt(s.auth_time),
            fmt(s.last_seen_at),
            fmt(s.expires_at)
        );
    }
    println!("{} live session(s)", sessions.len());
    Ok(())
}

/// `guildgate users revoke ID`: ends sessions, revokes grants, queues back-channel logout.
pub async fn users_revoke(settings: Settings, id: &str) -> anyhow::Result<()> {
    let id = crate::domain::DiscordId::parse(id).map_err(anyhow::Error::msg)?;
    let state = crate::startup::build_state(settings, Clock::default()).await?;
    let now = state.clock.now();
    let ended = crate::flows::logout::revoke_user(&state.context(), &id, now).await?;
    audit::emit(
        &audit::RequestInfo::NONE,
        &audit::Event::Admin {
            action: "users revoke",
            user_id: id.as_str(),
            client_id: None,
            changed: true,
        },
    );
    println!(
        "ended {} session(s) and revoked every token of user {id}; apps with a back-channel logout URI will be told",
        ended.len()
    );
    Ok(())
}

/// `guildgate users forget-consent ID CLIENT`.
pub async fn forget_consent(settings: Settings, id: &str, client: &str) -> anyhow::Result<()> {
    let id = crate::domain::DiscordId::parse(id).map_err(anyhow::Error::msg)?;
    let client = crate::domain::ClientId::parse(client).map_err(anyhow::Error::msg)?;
    let state = crate::startup::build_state(settings, Clock::default()).await?;
    let forgot = state.store.revoke_consent(&id, &client).await?;
    audit::emit(
        &audit::RequestInfo::NONE,
        &audit::Event::Admin {
            action: "users forget-consent",
            user_id: id.as_str(),
            client_id: Some(client.as_str()),
            changed: forgot,
        },
    );
    if forgot {
        println!("forgot {id}'s consent for {client}; they will be asked again");
    } else {
        println!("{id} had no remembered consent for {client}");
    }
    Ok(())
}

/// `guildgate hash-secret`: argon2id PHC string for a secret read from stdin.
pub fn hash_secret() -> anyhow::Result<()> {
    let secret = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("client secret (not echoed): ")
            .context("cannot read the secret from the terminal")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the secret from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if secret.len() < 16 {
        anyhow::bail!(
            "refusing a secret shorter than 16 characters; generate one with `openssl rand -base64 32`"
        );
    }
    println!("{}", crate::clients::hash_secret(&secret)?);
    Ok(())
}

/// `guildgate healthcheck`: succeeds when the readiness endpoint answers 200 within 3 s.
pub async fn healthcheck(url: &str) -> anyhow::Result<()> {
    let response = crate::tls::client_builder()
        .build()?
        .get(url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .with_context(|| format!("{url} is not answering"))?;
    if !response.status().is_success() {
        anyhow::bail!("{url} answered {}", response.status());
    }
    Ok(())
}

/// `guildgate serve --pid-file PATH`: the file holding this process's id, removed on drop.
pub struct PidFile(std::path::PathBuf);

impl PidFile {
    /// Writes the current process id to `path`.
    pub fn write(path: std::path::PathBuf) -> anyhow::Result<Self> {
        std::fs::write(&path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write the pid file {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `guildgate reload`: sends SIGHUP to the process given by `pid` or named in `pid_file`.
pub fn reload(pid: Option<i32>, pid_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let pid = match (pid, pid_file) {
        (Some(pid), _) => pid,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the pid file {}", path.display()))?;
            text.trim().parse().with_context(|| {
                format!("the pid file {} does not hold a process id", path.display())
            })?
        }
        (None, None) => anyhow::bail!("give --pid or --pid-file"),
    };
    if pid <= 0 {
        anyhow::bail!("{pid} is not a process id");
    }
    // SAFETY: kill(2) with a positive pid and a valid signal number reads no memory of ours;
    // its only effect is the signal (or an error in errno).
    #[allow(unsafe_code)]
    let sent = unsafe { libc::kill(pid, libc::SIGHUP) };
    if sent != 0 {
        let cause = std::io::Error::last_os_error();
        anyhow::bail!("cannot signal process {pid}: {cause}");
    }
    println!(
        "sent SIGHUP to process {pid}: it reloads its configuration and logs the outcome (a configuration with problems changes nothing)"
    );
    Ok(())
}
