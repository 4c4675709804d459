//! The `guildgate` command line: parses arguments and calls into the library. No logic here.

use clap::{Parser, Subcommand};
use guildgate::cli;
use guildgate::config::Settings;
use guildgate::startup::{Application, format_problems};
use guildgate::state::Clock;
use guildgate::telemetry::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

/// An OpenID Connect provider that signs people in with Discord.
#[derive(Parser)]
#[command(name = "guildgate", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML), layered over the built-in defaults; GUILDGATE__SECTION__KEY
    /// environment variables override both.
    #[arg(
        long,
        short,
        global = true,
        env = "GUILDGATE_CONFIG",
        value_name = "PATH"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the identity provider (the default when no command is given).
    Serve,
    /// Run everything locally with nothing to configure: SQLite, generated keys, a fake Discord
    /// with demo users, and a demo app to sign in to.
    Dev {
        /// Port for guildgate; the fake Discord and the demo app take the next two.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Inspect or rotate signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// List live sign-in sessions.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Act on a person's access.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Read a client secret from standard input (not echoed at a terminal) and print its
    /// argon2id hash for `secret_hash` in [[clients]].
    HashSecret,
    /// Validate the configuration, print every problem with its key, exit 1 if there are any.
    CheckConfig,
    /// Exit 0 when a running guildgate answers its readiness check (for container health checks).
    Healthcheck {
        /// Readiness URL to probe.
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Show live sessions, newest first: id (the `sid` claim), user, signed in, last used, ends.
    List {
        /// Only this Discord user id's sessions.
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// End every session of a Discord user id and revoke all their tokens; apps with a
    /// back-channel logout URI are told (by the running guildgate processes).
    Revoke {
        /// The Discord user id.
        id: String,
    },
    /// Forget a person's remembered consent for one app (`consent = "once"` asks again).
    ForgetConsent {
        /// The Discord user id.
        id: String,
        /// The client id.
        client: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Show each key's kid, activation time and state.
    List,
    /// Add a new active signing key; older keys stay published so issued tokens still verify.
    Rotate,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("guildgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let quiet = !matches!(
        args.command,
        None | Some(Command::Serve) | Some(Command::Dev { .. })
    );
    let level = if quiet {
        "warn"
    } else {
        settings.log.level.as_str()
    };
    telemetry::init(
        level,
        LogFormat::from_config(&settings.log.format),
        std::io::stderr,
    );

    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Serve => actix_web::rt::System::new().block_on(serve(settings)),
        Command::Dev { port } => actix_web::rt::System::new().block_on(cli::dev(settings, port)),
        Command::Migrate => actix_web::rt::System::new().block_on(cli::migrate(&settings)),
        Command::Keys {
            command: KeysCommand::List,
        } => cli::keys_list(&settings),
        Command::Keys {
            command: KeysCommand::Rotate,
        } => cli::keys_rotate(&settings),
        Command::Sessions {
            command: SessionsCommand::List { user },
        } => actix_web::rt::System::new().block_on(cli::sessions_list(settings, user.as_deref())),
        Command::Users {
            command: UsersCommand::Revoke { id },
        } => actix_web::rt::System::new().block_on(cli::users_revoke(settings, &id)),
        Command::Users {
            command: UsersCommand::ForgetConsent { id, client },
        } => actix_web::rt::System::new().block_on(cli::forget_consent(settings, &id, &client)),
        Command::HashSecret => cli::hash_secret(),
        Command::Healthcheck { url } => {
            actix_web::rt::System::new().block_on(cli::healthcheck(&url))
        }
        Command::CheckConfig => match settings.validate() {
            Ok(config) => {
                for w in &config.warnings {
                    println!("warning: {w}");
                }
                println!("configuration is valid");
                Ok(())
            }
            Err(problems) => Err(anyhow::anyhow!(
                "{} problem(s) in the configuration:\n{}",
                problems.len(),
                format_problems(&problems)
            )),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guildgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings, Clock::default()).await?;
    app.run_until_stopped().await?;
    Ok(())
}
