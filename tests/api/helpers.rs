//! spawn_app(): a real guildgate on port 0 with a fresh database and key folder.

use crate::browser::{Browser, query_of};
use crate::test_db::{Backend, TestDb, fresh_database};
use guildgate::config::Settings;
use guildgate::discord::fake::{FakeData, FakeDiscord, FakeDiscordHandle};
use guildgate::startup::Application;
use guildgate::state::{AppState, Clock};
use std::net::TcpListener;
use std::sync::OnceLock;

/// A running guildgate and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub address: String,
    /// Shared state of the running app (store, clock, keys).
    pub state: actix_web::web::Data<AppState>,
    /// A client that does not follow redirects, so tests can assert them.
    pub http: reqwest::Client,
    /// The fake Discord this app signs people in with.
    pub discord: FakeDiscordHandle,
    /// The configuration it was started with (for [`TestApp::sibling`]).
    toml: String,
    _keys_dir: tempfile::TempDir,
    _db: TestDb,
}

/// A confidential client with an argon2 `secret_hash`.
pub const APP: &str = "app";
/// Its secret.
pub const APP_SECRET: &str = "app-secret-app-secret";
/// Its redirect URI.
pub const APP_REDIRECT: &str = "https://app.example.com/oidc/callback";
/// A second confidential client (plain dev secret), for SSO and cross-client tests.
pub const OTHER: &str = "other";
/// Its secret.
pub const OTHER_SECRET: &str = "other-secret-other-secret";
/// Its redirect URI.
pub const OTHER_REDIRECT: &str = "https://other.example.com/cb";
/// A public client (PKCE required).
pub const SPA: &str = "spa";
/// Its loopback redirect URI.
pub const SPA_REDIRECT: &str = "http://127.0.0.1/callback";
/// Demo users of the fake Discord.
pub const ALICE: &str = "318172463195504640";
/// The staff member.
pub const BOB: &str = "402931734925557761";

fn app_secret_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| guildgate::clients::hash_secret(APP_SECRET).expect("hash"))
}

/// The clients every test app has.
fn clients_toml() -> String {
    format!(
        r#"
[[clients]]
id = "{APP}"
name = "Test app"
secret_hash = "{hash}"
redirect_uris = ["{APP_REDIRECT}", "https://app.example.com/second?keep=1"]

[[clients]]
id = "{OTHER}"
secret = "{OTHER_SECRET}"
redirect_uris = ["{OTHER_REDIRECT}"]
refresh_tokens = true

[[clients]]
id = "{SPA}"
public = true
redirect_uris = ["{SPA_REDIRECT}"]
"#,
        hash = app_secret_hash()
    )
}

/// The backend integration tests run on: Postgres when `GUILDGATE_TEST_POSTGRES_URL` is set.
pub fn backend() -> Backend {
    if std::env::var("GUILDGATE_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// Test settings: defaults, then the given TOML, then the per-test database, keys and issuer.
pub fn settings_for(
    db_url: &str,
    keys_dir: &std::path::Path,
    issuer: &str,
    extra_toml: &str,
) -> Settings {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("test.toml");
    std::fs::write(&file, extra_toml).expect("write test config");
    let env = [
        ("GUILDGATE__ISSUER", issuer.to_owned()),
        ("GUILDGATE__DATABASE__URL", db_url.to_owned()),
        ("GUILDGATE__DATABASE__MAX_CONNECTIONS", "5".to_owned()),
        ("GUILDGATE__KEYS__DIR", keys_dir.display().to_string()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    Settings::load_with(Some(&file), env).expect("test settings load")
}

/// Starts guildgate (with the test clients and `extra_toml`) and a fake Discord.
pub async fn spawn_app_with(extra_toml: &str) -> TestApp {
    spawn_app_as("http", extra_toml).await
}

/// As [`spawn_app_with`], with an issuer of the given scheme: `"https"` gives the cookie rules
/// of an https deployment (the issuer and every URL guildgate hands out say https), while the
/// test still talks plain http to `address`.
pub async fn spawn_app_as(scheme: &str, extra_toml: &str) -> TestApp {
    let db = fresh_database(backend()).await;
    let keys_dir = tempfile::tempdir().expect("keys dir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().expect("local addr").port();
    let address = format!("http://127.0.0.1:{port}");
    let issuer = format!("{scheme}://127.0.0.1:{port}");
    let mut data = FakeData::demo().expect("demo data");
    data.redirect_uris = vec![format!("{issuer}/callback/discord")];
    let discord = FakeDiscord::start(data.clone()).expect("fake Discord starts");
    let toml = format!("{}\n{extra_toml}", clients_toml());
    let (state, http) = start(&db.url, keys_dir.path(), &issuer, &toml, &discord, listener).await;
    TestApp {
        address,
        state,
        http,
        discord,
        toml,
        _keys_dir: keys_dir,
        _db: db,
    }
}

/// Builds and runs one guildgate with the fake Discord's URLs and credentials.
async fn start(
    db_url: &str,
    keys_dir: &std::path::Path,
    issuer: &str,
    toml: &str,
    discord: &FakeDiscordHandle,
    listener: TcpListener,
) -> (actix_web::web::Data<AppState>, reqwest::Client) {
    let mut settings = settings_for(db_url, keys_dir, issuer, toml);
    settings.discord.client_id = discord.client_id();
    settings.discord.client_secret = discord.client_secret().into();
    settings.discord.authorize_url = discord.authorize_url().to_string();
    settings.discord.api_base_url = discord.api_base_url().to_string();
    // Used only when a test configures a bot token (and names no other Gateway).
    if settings.discord.bot.gateway_url.is_none() {
        settings.discord.bot.gateway_url = Some(discord.gateway_url());
    }
    let app = Application::build_with_listener(settings, Clock::default(), Some(listener))
        .await
        .expect("guildgate builds");
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    (state, http)
}

/// A second guildgate of the same deployment: see [`TestApp::sibling`].
pub struct Sibling {
    /// Where it listens (its issuer is the first app's).
    pub address: String,
    /// Its own state: its own memory and clock, the shared database.
    pub state: actix_web::web::Data<AppState>,
    http: reqwest::Client,
}

impl Sibling {
    /// POSTs a form to this process's `/token` with Basic credentials.
    pub async fn token(&self, basic: (&str, &str), form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}/token", self.address))
            .form(form)
            .basic_auth(basic.0, Some(basic.1))
            .send()
            .await
            .expect("token request")
    }
}

/// Starts guildgate with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with("").await
}

impl TestApp {
    /// Another guildgate process of this deployment: the same database, keys folder, issuer,
    /// configuration and fake Discord, with nothing in memory shared (its own caches, locks and
    /// clock, which starts where this app's clock is now).
    pub async fn sibling(&self) -> Sibling {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = listener.local_addr().expect("local addr").port();
        let (state, http) = start(
            &self._db.url,
            self._keys_dir.path(),
            &self.address,
            &self.toml,
            &self.discord,
            listener,
        )
        .await;
        let ahead = self.state.clock.now() - state.clock.now();
        state
            .clock
            .advance(std::time::Duration::try_from(ahead).unwrap_or_default());
        Sibling {
            address: format!("http://127.0.0.1:{port}"),
            state,
            http,
        }
    }

    /// GET a path on the app.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("request reaches the app")
    }
}

impl TestApp {
    /// `/authorize?…` with `client_id`, `redirect_uri`, `response_type=code`, `scope=openid`
    /// (each overridable) and `extra` parameters.
    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let overridden = |k: &str| extra.iter().any(|(e, _)| *e == k);
        for (k, v) in [
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", "openid"),
        ] {
            if !overridden(k) {
                query.append_pair(k, v);
            }
        }
        for (k, v) in extra {
            query.append_pair(k, v);
        }
        format!("{}/authorize?{}", self.address, query.finish())
    }

    /// Drives `browser` from an authorization URL through the fake Discord (signed in as
    /// `user`) back to the app; returns the final redirect to the app.
    pub async fn sign_in(&self, browser: &mut Browser, authorize_url: &str, user: &str) -> String {
        let to_discord = browser.get(authorize_url).await;
        assert_eq!(
            to_discord.status, 302,
            "authorize redirects to Discord: {}",
            to_discord.body
        );
        let discord_url = to_discord.location.expect("location");
        self.discord.sign_in_as(Some(user));
        let back = browser.get(&discord_url).await;
        let callback = back.location.expect("Discord redirects back");
        assert!(
            callback.starts_with(&format!("{}/callback/discord", self.address)),
            "{callback}"
        );
        let done = browser.get(&callback).await;
        assert!(
            matches!(done.status, 302 | 303),
            "callback redirects to the app: {} {}",
            done.status,
            done.body
        );
        done.location.expect("location")
    }

    /// Signs `user` in to `client_id` and returns the authorization code.
    pub async fn code_for(
        &self,
        browser: &mut Browser,
        client_id: &str,
        redirect_uri: &str,
        extra: &[(&str, &str)],
        user: &str,
    ) -> String {
        let url = self.authorize_url(client_id, redirect_uri, extra);
        let location = self.sign_in(browser, &url, user).await;
        query_of(&location)
            .get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code in {location}"))
    }

    /// POSTs a form to `/token` with optional Basic credentials.
    pub async fn token(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.post(format!("{}/token", self.address)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.expect("token request")
    }

    /// Redeems a code for the `app` client with its secret (Basic).
    pub async fn redeem(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token(Some((APP, APP_SECRET)), &form).await
    }

    /// GET /userinfo with a bearer token.
    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/userinfo", self.address))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("userinfo request")
    }
}
