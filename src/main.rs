//! The `guildgate` command line: parses arguments and calls into the library. No logic here.

use clap::{Parser, Subcommand};
use guildgate::cli;
use guildgate::config::Settings;
use guildgate::report;
use guildgate::startup::Application;
use guildgate::state::Clock;
use guildgate::telemetry::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

/// Printed after `guildgate --help`: examples, and what the exit status means.
const TOP_HELP: &str = "\
Examples:
  guildgate dev                                     try it locally, nothing to configure
  guildgate check-config -c guildgate.toml          list every problem in a configuration
  guildgate serve -c /etc/guildgate/guildgate.toml  run it

Exit status:
  0  success
  1  invalid configuration, arguments or input, or an unreadable key file: fix it and run
     again (`healthcheck` also exits 1 when guildgate is not ready, as Docker expects)
  2  a dependency is unavailable: the database could not be reached within
     database.connect_timeout, or the listen port is taken; running again later may work

Results go to standard output, problems to standard error.";

/// An OpenID Connect provider that signs people in with Discord.
#[derive(Parser)]
#[command(
    name = "guildgate",
    version,
    about,
    long_about = None,
    after_help = TOP_HELP
)]
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
    ///
    /// Waits up to database.connect_timeout (30s by default) for the database, answering
    /// /healthz (200) and /readyz (503) meanwhile, then applies migrations and serves.
    #[command(after_help = concat!(
        "Example:\n",
        "  GUILDGATE__DATABASE__URL=postgres://guildgate:secret@db/guildgate \\\n",
        "    guildgate serve -c /etc/guildgate/guildgate.toml\n\n",
        "Signals:\n",
        "  SIGTERM, SIGINT  stop accepting connections, let requests in flight finish (within\n",
        "                   server.shutdown_timeout), then exit 0\n",
        "  SIGHUP           reload the configuration file and environment (see `reload --help`)\n\n",
        "Exit status:\n",
        "  0  stopped by SIGINT/SIGTERM\n",
        "  1  invalid configuration or an unreadable key file\n",
        "  2  the database could not be reached within database.connect_timeout, or the\n",
        "     listen port (server.listen) is taken"
    ))]
    Serve {
        /// Write this process's id to PATH (for `guildgate reload --pid-file PATH`); removed
        /// again when guildgate stops.
        #[arg(long, value_name = "PATH")]
        pid_file: Option<PathBuf>,
    },
    /// Tell a running guildgate to reload its configuration (sends it SIGHUP).
    ///
    /// The process re-reads its config file and GUILDGATE__* environment and checks the whole
    /// result. Clients, access rules, groups, lifetimes and limits change at once; a
    /// configuration with any problem changes nothing (every problem is logged). A new
    /// discord.client_secret or discord.bot.token is tried with Discord first and used only once
    /// Discord accepts it (a refused one is logged; the old one stays in use). The keys folder
    /// is re-read too. Settings that need a restart (issuer, [server], [log], [database],
    /// keys.dir, the rest of [discord], [secrets], tokens.access_token_alg, session.cookie_name)
    /// keep their running values and are logged.
    #[command(after_help = concat!(
        "Examples:\n",
        "  guildgate serve --pid-file /run/guildgate.pid &\n",
        "  guildgate reload --pid-file /run/guildgate.pid\n",
        "  kill -HUP $(pidof guildgate)          the same, without this command\n\n",
        "Check a file first with `guildgate check-config -c FILE`: the running process only logs\n",
        "what it found. Exit status: 0 signal sent, 1 no such process or pid file."
    ))]
    Reload {
        /// The process id of the running guildgate.
        #[arg(
            long,
            conflicts_with = "pid_file",
            required_unless_present = "pid_file"
        )]
        pid: Option<i32>,
        /// A file holding it (as written by `guildgate serve --pid-file`).
        #[arg(long, value_name = "PATH")]
        pid_file: Option<PathBuf>,
    },
    /// Run everything locally with nothing to configure: SQLite, generated keys, a fake Discord
    /// with demo users, and a demo app to sign in to.
    #[command(after_help = concat!(
        "Example:\n",
        "  guildgate dev --port 9000      guildgate on :9000, the demo app on :9002\n\n",
        "Exit status: 0 ok, 1 invalid input, 2 a port is taken (choose another with --port)."
    ))]
    Dev {
        /// Port for guildgate; the demo app takes this port + 2 (the fake Discord a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Apply database migrations and exit (--dry-run: list them, change nothing).
    #[command(after_help = concat!(
        "Example:\n",
        "  guildgate migrate --dry-run -c /etc/guildgate/guildgate.toml\n",
        "  guildgate migrate -c /etc/guildgate/guildgate.toml\n\n",
        "Waits up to database.connect_timeout for the database. Migrations are additive, so\n",
        "the release before keeps working on the migrated schema (migrations/README.md).\n",
        "Exit status: 0 ok, 1 invalid configuration, 2 the database could not be reached."
    ))]
    Migrate {
        /// List the migrations that would run, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a consistent copy of the SQLite database while guildgate runs (Postgres: pg_dump).
    #[command(after_help = concat!(
        "Example:\n",
        "  guildgate backup /var/backups/guildgate-$(date +%F).db -c /etc/guildgate/guildgate.toml\n\n",
        "The copy is one snapshot (SQLite's VACUUM INTO): requests go on meanwhile. PATH must\n",
        "not exist. Keep keys.dir and [secrets] with it. README \"Backup and restore\" has the\n",
        "restore steps and the Postgres procedure.\n",
        "Exit status: 0 written and checked, 1 not SQLite, no database, PATH exists, or failed."
    ))]
    Backup {
        /// The new file to write.
        path: PathBuf,
    },
    /// Re-seal every kept Discord token with the newest [secrets] key (then older keys can go).
    #[command(after_help = concat!(
        "Example:\n",
        "  GUILDGATE__SECRETS__ENCRYPTION_KEYS=$NEW,$OLD guildgate reencrypt -c /etc/guildgate/guildgate.toml\n\n",
        "Runs beside guildgate: a row a re-check changed meanwhile is read again. Reports how\n",
        "many were re-sealed. README \"Rotating the encryption key\" has the whole procedure.\n",
        "Exit status: 0 done, 1 invalid configuration or no key, 2 the database is unreachable."
    ))]
    Reencrypt,
    /// Inspect, rotate or revoke signing keys.
    #[command(
        after_help = "Example:\n  guildgate keys list\n  guildgate keys rotate\n  guildgate keys revoke 4jY1…"
    )]
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// List live sign-in sessions.
    #[command(after_help = "Example:\n  guildgate sessions list --user 318172463195504640")]
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Register apps (print a new client's TOML) and list the registered ones.
    #[command(after_help = concat!(
        "Examples:\n",
        "  guildgate clients add \"Team wiki\" --redirect-uri https://wiki.example.com/oidc/callback\n",
        "  guildgate clients list -c /etc/guildgate/guildgate.toml"
    ))]
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Show or act on a person's access.
    #[command(after_help = concat!(
        "Examples:\n",
        "  guildgate users show 318172463195504640\n",
        "  guildgate users revoke 318172463195504640\n",
        "  guildgate users forget-consent 318172463195504640 wiki"
    ))]
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Read a client secret from standard input (not echoed at a terminal) and print its
    /// argon2id hash for `secret_hash` in [[clients]].
    #[command(
        after_help = "Example:\n  openssl rand -base64 32 | tee wiki.secret | guildgate hash-secret"
    )]
    HashSecret,
    /// Validate the configuration, print every problem with its key, exit 1 if there are any.
    #[command(after_help = concat!(
        "Example:\n",
        "  guildgate check-config -c /etc/guildgate/guildgate.toml\n\n",
        "Prints \"configuration is valid\" on standard output, warnings and problems on\n",
        "standard error. Exit status: 0 valid, 1 problems found."
    ))]
    CheckConfig,
    /// Exit 0 when a running guildgate answers its readiness check (for container health checks).
    #[command(after_help = concat!(
        "Example (Dockerfile):\n",
        "  HEALTHCHECK CMD [\"guildgate\", \"healthcheck\", \"--url\", \"http://127.0.0.1:8080/readyz\"]\n\n",
        "Exit status: 0 ready, 1 not ready or not answering (Docker reserves 2)."
    ))]
    Healthcheck {
        /// Readiness URL to probe.
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Show live sessions, newest first: id (the `sid` claim), user, signed in, last used, ends.
    #[command(after_help = "Example:\n  guildgate sessions list --user 318172463195504640")]
    List {
        /// Only this Discord user id's sessions.
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Generate a registration: a new secret, printed once, and the [[clients]] block with its
    /// argon2id hash to paste into the configuration. No secret is ever taken from the command
    /// line (it would stay in the shell history).
    #[command(after_help = concat!(
        "Example:\n",
        "  guildgate clients add \"Team wiki\" --redirect-uri https://wiki.example.com/oidc/callback\n",
        "  guildgate clients add cli-tool --public --redirect-uri http://127.0.0.1/callback\n\n",
        "The secret goes to the app; guildgate keeps only the hash. Restart (or reload)\n",
        "guildgate after adding the block."
    ))]
    Add {
        /// The app's display name; the client id is derived from it (lower case, `-`).
        name: String,
        /// Exact redirect URI; repeat for several.
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// A public client (a browser or native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Use this client id instead of one derived from the name.
        #[arg(long)]
        id: Option<String>,
    },
    /// Show every registered client: kind, redirect URIs, access rules, groups, consent.
    #[command(after_help = "Example:\n  guildgate clients list -c /etc/guildgate/guildgate.toml")]
    List,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Show a person: profile, live sessions (with browser and address), live grants,
    /// remembered consents and the last membership snapshot taken from Discord.
    #[command(after_help = "Example:\n  guildgate users show 318172463195504640")]
    Show {
        /// The Discord user id.
        id: String,
    },
    /// End every session of a Discord user id and revoke all their tokens; apps with a
    /// back-channel logout URI are told (by the running guildgate processes).
    #[command(after_help = "Example:\n  guildgate users revoke 318172463195504640")]
    Revoke {
        /// The Discord user id.
        id: String,
    },
    /// Forget a person's remembered consent for one app (`consent = "once"` asks again).
    #[command(after_help = "Example:\n  guildgate users forget-consent 318172463195504640 wiki")]
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
    #[command(after_help = "Example:\n  guildgate keys list -c /etc/guildgate/guildgate.toml")]
    List,
    /// Add a new active signing key; older keys stay published so issued tokens still verify.
    #[command(after_help = "Example:\n  guildgate keys rotate -c /etc/guildgate/guildgate.toml")]
    Rotate,
    /// Revoke a compromised key: it leaves /jwks.json and the ID and access tokens it signed are
    /// refused; a new key signs when it was the active one. Refresh tokens keep working.
    #[command(after_help = concat!(
        "Example:\n",
        "  guildgate keys revoke 4jY1vM… -c /etc/guildgate/guildgate.toml\n",
        "  guildgate reload --pid-file /run/guildgate.pid     apply it now (else within keys.reload_every;\n",
        "                                                     on Postgres every process within a second)\n\n",
        "KID is a kid from `keys list` (or its access-token key's kid from /jwks.json).\n",
        "Exit status: 0 revoked (or already revoked), 1 no such key or an unreadable folder."
    ))]
    Revoke {
        /// The key's id. A kid is a base64url thumbprint and may begin with `-`, so a leading
        /// hyphen is taken as the kid, not as an option.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

fn main() -> ExitCode {
    guildgate::allocator::tune();
    let args = match Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 1
            // (clap's own default, 2, is ours for "a dependency is unavailable").
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                cli::EXIT_INVALID
            } else {
                cli::EXIT_OK
            });
        }
    };
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("guildgate: {}", report::render(&e));
            return ExitCode::from(cli::EXIT_INVALID);
        }
    };
    let quiet = !matches!(
        args.command,
        None | Some(Command::Serve { .. }) | Some(Command::Dev { .. })
    );
    let level = if quiet {
        "warn"
    } else {
        settings.log.level.as_str()
    };
    telemetry::init(
        level,
        LogFormat::from_config(&settings.log.format),
        telemetry::Colour::for_stderr(),
        std::io::stderr,
    );

    let config_file = args.config.clone();
    let result = match args.command.unwrap_or(Command::Serve { pid_file: None }) {
        Command::Serve { pid_file } => {
            actix_web::rt::System::new().block_on(serve(settings, config_file, pid_file))
        }
        Command::Reload { pid, pid_file } => cli::reload(pid, pid_file.as_deref()),
        Command::Dev { port } => dev(settings, port),
        Command::Migrate { dry_run } => {
            actix_web::rt::System::new().block_on(cli::migrate(&settings, dry_run))
        }
        Command::Backup { path } => cli::backup(&settings, &path),
        Command::Reencrypt => actix_web::rt::System::new().block_on(cli::reencrypt::run(&settings)),
        Command::Keys {
            command: KeysCommand::List,
        } => cli::keys::list(&settings),
        Command::Keys {
            command: KeysCommand::Rotate,
        } => cli::keys::rotate(&settings),
        Command::Keys {
            command: KeysCommand::Revoke { kid },
        } => cli::keys::revoke(&settings, &kid),
        Command::Sessions {
            command: SessionsCommand::List { user },
        } => actix_web::rt::System::new().block_on(cli::sessions_list(settings, user.as_deref())),
        Command::Clients {
            command:
                ClientsCommand::Add {
                    name,
                    redirect_uris,
                    public,
                    id,
                },
        } => clients_add(&settings, &name, id.as_deref(), &redirect_uris, public),
        Command::Clients {
            command: ClientsCommand::List,
        } => cli::admin::list_clients(&settings).map(|text| print!("{text}")),
        Command::Users {
            command: UsersCommand::Show { id },
        } => actix_web::rt::System::new()
            .block_on(cli::admin::show_user(settings, &id))
            .map(|text| print!("{text}")),
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
        Command::CheckConfig => cli::check_config(&settings),
    };
    match result {
        Ok(()) => ExitCode::from(cli::EXIT_OK),
        Err(e) => {
            eprintln!("guildgate: {}", report::render_anyhow(&e));
            ExitCode::from(cli::exit_code(&e))
        }
    }
}

/// `guildgate clients add`: the secret once, then the block to paste.
fn clients_add(
    settings: &Settings,
    name: &str,
    id: Option<&str>,
    redirect_uris: &[String],
    public: bool,
) -> anyhow::Result<()> {
    let registration = cli::admin::add_client(
        settings,
        &cli::admin::NewClient {
            name,
            id,
            redirect_uris,
            public,
        },
    )?;
    match &registration.secret {
        Some(secret) => {
            println!("client id:     {}", registration.id);
            println!("client secret: {secret}");
            println!("(shown once: give it to the app now; guildgate keeps only its hash)");
        }
        None => println!(
            "client id: {} (public: no secret, PKCE required)",
            registration.id
        ),
    }
    println!(
        "
# Add to the guildgate configuration, then restart or reload:"
    );
    print!("{}", registration.toml);
    Ok(())
}

/// `guildgate dev`, in a build with the `dev` feature (the default).
#[cfg(feature = "dev")]
fn dev(settings: Settings, port: u16) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(guildgate::dev::run(settings, port))
}

/// A production build (`--no-default-features`) has no fake Discord and no demo app.
#[cfg(not(feature = "dev"))]
fn dev(_settings: Settings, _port: u16) -> anyhow::Result<()> {
    anyhow::bail!(
        "this guildgate was built without the `dev` feature (a production build), so `dev` is not available; use a default build (`cargo run -- dev`) to try guildgate locally"
    )
}

async fn serve(
    settings: Settings,
    config_file: Option<PathBuf>,
    pid_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let app = Application::build(settings, Clock::default()).await?;
    let _pid_file = pid_file.map(cli::PidFile::write).transpose()?;
    app.serve_until_signalled(config_file).await?;
    Ok(())
}
