//! `guildgate dev`: guildgate, a fake Discord with demo users and a demo app in one process,
//! with nothing to configure. Compiled only with the `dev` cargo feature (on by default); a
//! production build (`--no-default-features`, as the Dockerfile does) carries none of it.

use crate::config::{ClaimRuleSettings, ClaimSettings, ClientSettings, GroupSettings, Settings};
use crate::demo::{self, DemoConfig};
use crate::discord::fake::{FakeData, FakeDiscord};
use crate::startup::{Application, StartupError};
use crate::state::Clock;
use anyhow::Context;

/// `guildgate dev`: guildgate on `port`, a fake Discord with demo users, and a demo app on
/// `port + 2`, all in this process with nothing to configure.
pub async fn run(mut settings: Settings, port: u16) -> anyhow::Result<()> {
    let issuer = format!("http://127.0.0.1:{port}");
    let demo_port = port
        .checked_add(2)
        .context("--port must be at most 65533 (the demo app takes --port + 2)")?;
    let demo_base = format!("http://127.0.0.1:{demo_port}");

    // The demo app's port is bound first, so a busy one is reported before anything starts.
    let listener = std::net::TcpListener::bind(("127.0.0.1", demo_port)).map_err(|cause| {
        StartupError::Bind {
            addr: format!("127.0.0.1:{demo_port} (the demo app, at --port + 2)"),
            setting: "--port",
            cause,
        }
    })?;
    let mut data = FakeData::demo().context("the built-in demo data is invalid")?;
    data.redirect_uris = vec![format!("{issuer}/callback/discord")];
    let fake = FakeDiscord::start(data.clone()).context("cannot start the fake Discord")?;

    settings.issuer = issuer.clone();
    settings.server.listen = format!("127.0.0.1:{port}");
    settings.database.url = "sqlite://data/dev.db".to_owned().into();
    settings.keys.dir = "keys/dev".into();
    settings.discord.client_id = data.client_id.clone();
    settings.discord.client_secret = data.client_secret.clone().into();
    settings.discord.authorize_url = fake.authorize_url().to_string();
    settings.discord.api_base_url = fake.api_base_url().to_string();
    // Live membership: the bot watches the demo server on the fake Discord's Gateway.
    settings.discord.bot.token = fake.bot_token().into();
    settings.discord.bot.gateway_url = Some(fake.gateway_url());
    // The demo app shows the people's verified linked accounts (the `connections` claim).
    if !settings.discord.scopes.iter().any(|s| s == "connections") {
        settings.discord.scopes.push("connections".to_owned());
    }
    // Demo access rules: the demo app admits members of the community server (Carol, in no
    // server, is refused) and sees who is staff through the `groups` claim.
    for (name, role) in [("community", None), ("staff", Some(DEMO_STAFF_ROLE))] {
        settings.groups.push(GroupSettings {
            name: name.to_owned(),
            guild: DEMO_GUILD.to_owned(),
            role: role.map(str::to_owned),
        });
    }
    // A fixed key is fine for local development only: it seals demo Discord tokens.
    settings.secrets.encryption_key = DEV_ENCRYPTION_KEY.to_owned().into();
    settings.clients.push(ClientSettings {
        id: DEMO_CLIENT_ID.to_owned(),
        name: Some("Demo app".to_owned()),
        secret_hash: Some(crate::clients::hash_secret(DEMO_CLIENT_SECRET)?),
        redirect_uris: vec![format!("{demo_base}/callback")],
        post_logout_redirect_uris: vec![format!("{demo_base}/")],
        backchannel_logout_uri: Some(format!("{demo_base}/backchannel")),
        allowed_guilds: vec![DEMO_GUILD.to_owned()],
        groups: vec!["community".to_owned(), "staff".to_owned()],
        refresh_tokens: true,
        connections: true,
        // The community's view of the person: the demo server's nickname and avatar, role
        // names in `groups` next to the configured ones, and a role mapped for this app.
        profile_guild: Some(DEMO_GUILD.to_owned()),
        group_format: "both".to_owned(),
        claims: vec![demo_role_claim()],
        ..ClientSettings::default()
    });
    // A command-line tool of the demo: signs in with the device flow (RFC 8628).
    settings.clients.push(ClientSettings {
        id: DEMO_CLI_ID.to_owned(),
        name: Some("Demo CLI".to_owned()),
        public: true,
        allowed_guilds: vec![DEMO_GUILD.to_owned()],
        groups: vec!["community".to_owned(), "staff".to_owned()],
        refresh_tokens: true,
        device_flow: true,
        ..ClientSettings::default()
    });

    let app = Application::build(settings, Clock::default())
        .await
        .map_err(|e| e.listen_set_by("--port"))?;
    let demo = demo::start(
        DemoConfig {
            issuer: issuer.clone(),
            client_id: DEMO_CLIENT_ID.to_owned(),
            client_secret: DEMO_CLIENT_SECRET.to_owned(),
            redirect_uri: format!("{demo_base}/callback"),
            kick: Some(demo::Kick(std::sync::Arc::new({
                let fake = fake.clone();
                move |user: &str| fake.kick(user, DEMO_GUILD)
            }))),
        },
        listener,
    )?;
    println!();
    println!("  guildgate (issuer)   {issuer}");
    println!("  fake Discord         {}", fake.base_url());
    println!("  demo app             {demo_base}   <- open this and press \"Sign in\"");
    println!();
    println!("  The demo app is client \"{DEMO_CLIENT_ID}\" with secret \"{DEMO_CLIENT_SECRET}\".");
    println!("  It admits members of the demo server: sign in as carol to see a refusal, as");
    println!("  bob.staff to see the \"staff\" group in the groups claim. Signed in, press");
    println!("  \"Kick me from the demo server\": the bot sees it and the demo app is signed out.");
    println!("  A command-line tool signs in with the device flow as client \"{DEMO_CLI_ID}\":");
    println!(
        "    curl -d client_id={DEMO_CLI_ID} -d scope='openid profile groups' {issuer}/device_authorization"
    );
    println!(
        "  then open {issuer}/device, type the user_code, and poll /token with the device_code"
    );
    println!("  (README: \"Command-line tools, devices and services\").");
    println!("  bob.staff to see his server nickname (\"Bob\"), the \"staff\" group and his");
    println!(
        "  Discord role \"Staff\" in the groups claim, and the demo role \"admin\" mapped from"
    );
    println!("  it. Signed in, press \"Kick me from the demo server\": the bot sees it and the");
    println!("  demo app is signed out.");
    println!("  Data: data/dev.db, keys: keys/dev/. Stop with Ctrl-C.");
    println!();
    let (a, b) = tokio::join!(app.serve_until_signalled(None), demo);
    a?;
    b?;
    Ok(())
}

/// The demo app's role, mapped from the demo server's roles: `admin` for Staff, `member` for
/// everyone else in the server, `guest` otherwise (the demo app admits only members, so a guest
/// is never seen there, but the default shows how one is written).
fn demo_role_claim() -> ClaimSettings {
    let rule = |role: Option<String>, guild: Option<&str>, value: &str| ClaimRuleSettings {
        role,
        guild: guild.map(str::to_owned),
        value: Some(serde_json::json!(value)),
        ..ClaimRuleSettings::default()
    };
    ClaimSettings {
        name: demo::ROLE_CLAIM.to_owned(),
        scope: None,
        rules: vec![
            rule(
                Some(format!("{DEMO_GUILD}:{DEMO_STAFF_ROLE}")),
                None,
                "admin",
            ),
            rule(None, Some(DEMO_GUILD), "member"),
        ],
        default: Some(serde_json::json!("guest")),
    }
}

/// The demo data's community server and its Staff role (config/dev-discord.toml).
const DEMO_GUILD: &str = "812345678901234567";
/// The demo's command-line tool (a public client using the device flow).
const DEMO_CLI_ID: &str = "demo-cli";
/// The Staff role.
const DEMO_STAFF_ROLE: &str = "845611301132730378";
/// `dev` only: seals the demo Discord tokens.
const DEV_ENCRYPTION_KEY: &str = "6465762d6f6e6c792d6b65792d6e657665722d7573652d696e2d70726f642121";

/// The demo app's registration in `dev`.
const DEMO_CLIENT_ID: &str = "demo-app";
/// Its secret; `dev` only, never a real deployment.
const DEMO_CLIENT_SECRET: &str = "demo-app-secret";
