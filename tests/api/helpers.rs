//! The one set of test helpers: `spawn_app()` (a real guildgate on port 0 with a fresh
//! database, key folder and fake Discord), the registered clients as tests drive them, one way
//! through the fake Discord's sign-in, one way to redeem a code, one reply type, and the bits
//! of pages and cookies tests read.

use crate::browser::{Browser, Page, query_of};
use crate::test_db::{Backend, TestDb, fresh_database};
use guildgate::config::Settings;
use guildgate::discord::fake::{FakeData, FakeDiscord, FakeDiscordHandle};
use guildgate::startup::Application;
use guildgate::state::{AppState, Clock};
use serde_json::Value;
use std::collections::HashMap;
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
    /// `http://127.0.0.1:PORT` of the metrics listener, when `server.metrics_listen` is set.
    pub metrics_address: Option<String>,
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

/// A Discord id (such as [`ALICE`]) typed as the store and the flows take it.
pub fn discord_id(raw: &str) -> guildgate::domain::DiscordId {
    guildgate::domain::DiscordId::parse(raw).expect("a snowflake")
}

/// A client id (such as [`OTHER`]) typed as the store and the flows take it.
pub fn client_id(raw: &str) -> guildgate::domain::ClientId {
    guildgate::domain::ClientId::parse(raw).expect("a client id")
}

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
    let (state, http, metrics_port) =
        start(&db.url, keys_dir.path(), &issuer, &toml, &discord, listener).await;
    TestApp {
        address,
        state,
        http,
        discord,
        metrics_address: metrics_port.map(|port| format!("http://127.0.0.1:{port}")),
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
) -> (actix_web::web::Data<AppState>, reqwest::Client, Option<u16>) {
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
    let metrics_port = app.metrics_port();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    (state, http, metrics_port)
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
        self.sibling_configured(&self.toml).await
    }

    /// As [`TestApp::sibling`], configured with the test clients and `extra_toml` instead of
    /// this app's extra lines: a process of the deployment started after a configuration change.
    pub async fn sibling_with(&self, extra_toml: &str) -> Sibling {
        self.sibling_configured(&format!("{}\n{extra_toml}", clients_toml()))
            .await
    }

    async fn sibling_configured(&self, toml: &str) -> Sibling {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = listener.local_addr().expect("local addr").port();
        let (state, http, _) = start(
            &self._db.url,
            self._keys_dir.path(),
            &self.address,
            toml,
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

    /// The TOML it was started with (the test clients and the test's extra lines).
    pub fn config_toml(&self) -> &str {
        &self.toml
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

    /// Opens `discord_url` (our redirect to the fake Discord's authorize page) as `user`, who
    /// approves; returns the callback URL Discord sends the browser back to, not yet opened.
    /// Every sign-in helper goes through the fake Discord here.
    pub async fn discord_approves(
        &self,
        browser: &mut Browser,
        discord_url: &str,
        user: &str,
    ) -> String {
        assert!(goes_to_discord(self, discord_url), "{discord_url}");
        self.discord.sign_in_as(Some(user));
        let back = browser.get(discord_url).await;
        let callback = back.location.expect("Discord redirects back");
        assert!(
            callback.starts_with(&format!("{}/callback/discord", self.address)),
            "{callback}"
        );
        callback
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
        let callback = self.discord_approves(browser, &discord_url, user).await;
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
        self.token(
            Some((APP, APP_SECRET)),
            &redemption(code, redirect_uri, verifier),
        )
        .await
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

// ---- Registered clients as the tests drive them --------------------------------------------

/// The session cookie's name (config/default.toml `[session] cookie_name`).
pub const SESSION_COOKIE: &str = "guildgate_session";

/// A confidential client as a test drives it.
#[derive(Clone, Copy, Debug)]
pub struct Rp {
    /// `client_id`.
    pub id: &'static str,
    /// Its plain secret (sent with HTTP Basic).
    pub secret: &'static str,
    /// Its registered redirect URI.
    pub redirect: &'static str,
}

/// `other`: plain secret, `refresh_tokens = true`.
pub const OTHER_RP: Rp = Rp {
    id: OTHER,
    secret: OTHER_SECRET,
    redirect: OTHER_REDIRECT,
};

/// `app`: argon2 secret, no refresh tokens unless `offline_access` is asked for.
pub const APP_RP: Rp = Rp {
    id: APP,
    secret: APP_SECRET,
    redirect: APP_REDIRECT,
};

/// `offline`: plain secret, allowed `offline_access`, consent `never` (so offline access needs
/// `prompt=consent` or a remembered consent).
pub const OFFLINE_RP: Rp = Rp {
    id: "offline",
    secret: "offline-secret-offline-secret",
    redirect: "https://offline.example.com/cb",
};

/// The `[[clients]]` table of [`OFFLINE_RP`], with extra lines.
pub fn offline_client_toml(extra_lines: &str) -> String {
    client_toml(
        OFFLINE_RP,
        &format!(
            "offline_access = true
{extra_lines}"
        ),
    )
}

/// A `[[clients]]` TOML table for `rp` with extra `key = value` lines.
pub fn client_toml(rp: Rp, extra_lines: &str) -> String {
    format!(
        "\n[[clients]]\nid = \"{}\"\nname = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{}\"]\n{extra_lines}\n",
        rp.id,
        display_name(rp),
        rp.secret,
        rp.redirect
    )
}

/// The display name `client_toml` gives a client.
pub fn display_name(rp: Rp) -> String {
    format!("The {} app", rp.id)
}

/// Status, headers and JSON body of an endpoint's answer: the one reply type of the tests.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Reply {
    /// Reads a response whose body should be JSON.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Self {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// The `error` code, or `""`.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    /// A header as text, or `""`.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// A string member of the body; panics with the body when it is missing.
    pub fn text(&self, name: &str) -> String {
        self.body[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            .to_owned()
    }
}

/// The `authorization_code` grant's form.
fn redemption<'a>(
    code: &'a str,
    redirect_uri: &'a str,
    verifier: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    form
}

/// Redeems `code` as `rp` (Basic auth).
pub async fn redeem_as(app: &TestApp, rp: Rp, code: &str) -> Reply {
    Reply::read(
        app.token(
            Some((rp.id, rp.secret)),
            &redemption(code, rp.redirect, None),
        )
        .await,
    )
    .await
}

/// Signs `user` in to `rp` in `browser` (authorize `extra` parameters; at Discord only when
/// the browser has no session) and redeems the code; returns the token response.
pub async fn tokens_via(
    app: &TestApp,
    browser: &mut Browser,
    rp: Rp,
    extra: &[(&str, &str)],
    user: &str,
) -> Reply {
    let url = app.authorize_url(rp.id, rp.redirect, extra);
    let page = authorize_page(app, browser, &url, user).await;
    let code = redirect_params(&page)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code: {:?} {}", page.location, page.body));
    let reply = redeem_as(app, rp, &code).await;
    assert_eq!(reply.status, 200, "the code is redeemed: {}", reply.body);
    reply
}

/// Signs `user` in to `rp` asking for `openid offline_access` with `prompt=consent`, allows on
/// the consent page and redeems the code: how an app gets offline access (OIDC Core §11).
pub async fn offline_tokens_via(app: &TestApp, browser: &mut Browser, rp: Rp, user: &str) -> Reply {
    let url = app.authorize_url(
        rp.id,
        rp.redirect,
        &[("scope", "openid offline_access"), ("prompt", "consent")],
    );
    let page = authorize_page(app, browser, &url, user).await;
    let ticket = hidden_field(&page.body, "ticket")
        .unwrap_or_else(|| panic!("the consent page: {} {}", page.status, page.body));
    let allowed = post_as_browser(
        app,
        browser,
        "/consent",
        &[("ticket", &ticket), ("answer", "allow")],
    )
    .await;
    let to_app = location(&allowed).expect("consent redirects to the app");
    let code = query_of(&to_app)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {to_app}"));
    let reply = redeem_as(app, rp, &code).await;
    assert_eq!(reply.status, 200, "the code is redeemed: {}", reply.body);
    reply
}

/// The `refresh_token` grant as `rp`, with an optional `scope`.
pub async fn refresh_as(app: &TestApp, rp: Rp, refresh_token: &str, scope: Option<&str>) -> Reply {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    Reply::read(app.token(Some((rp.id, rp.secret)), &form).await).await
}

async fn client_post(app: &TestApp, path: &str, rp: Option<Rp>, token: &str) -> Reply {
    let mut request = app
        .http
        .post(format!("{}{path}", app.address))
        .form(&[("token", token)]);
    if let Some(rp) = rp {
        request = request.basic_auth(rp.id, Some(rp.secret));
    }
    Reply::read(request.send().await.expect("the app answers")).await
}

/// `POST /introspect` as `rp` (or without client authentication).
pub async fn introspect_as(app: &TestApp, rp: Option<Rp>, token: &str) -> Reply {
    client_post(app, "/introspect", rp, token).await
}

/// `POST /revoke` as `rp` (or without client authentication).
pub async fn revoke_as(app: &TestApp, rp: Option<Rp>, token: &str) -> Reply {
    client_post(app, "/revoke", rp, token).await
}

/// The status `/userinfo` gives an access token.
pub async fn userinfo_status(app: &TestApp, access_token: &str) -> u16 {
    app.userinfo(access_token).await.status().as_u16()
}

/// The value of the form field `<input … name="NAME" value="…">` on a page.
pub fn hidden_field(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = start + body[start..].find('"')?;
    Some(unescape_html(&body[start..end]))
}

/// The browser's session cookie at the app, if it has one.
pub fn session_cookie(app: &TestApp, browser: &Browser) -> Option<String> {
    browser.cookie(&app.address, SESSION_COOKIE)
}

/// POSTs a form to the app as `browser` would: with its session cookie (if any).
pub async fn post_as_browser(
    app: &TestApp,
    browser: &Browser,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.http.post(format!("{}{path}", app.address)).form(form);
    if let Some(secret) = session_cookie(app, browser) {
        request = request.header("cookie", format!("{SESSION_COOKIE}={secret}"));
    }
    request.send().await.expect("the app answers")
}

/// The `Location` of a redirect.
pub fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Sends `browser` to `authorize_url`; when that goes to Discord, signs in there as `user`
/// and opens the callback. Returns the last page (a redirect to the app, or the consent page).
pub async fn authorize_page(
    app: &TestApp,
    browser: &mut Browser,
    authorize_url: &str,
    user: &str,
) -> Page {
    let first = browser.get(authorize_url).await;
    let Some(discord_url) = first.location.clone().filter(|l| goes_to_discord(app, l)) else {
        return first;
    };
    let callback = app.discord_approves(browser, &discord_url, user).await;
    browser.get(&callback).await
}

/// The query of a page's redirect; panics with the page when it is not one.
pub fn redirect_params(page: &Page) -> HashMap<String, String> {
    let location = page
        .location
        .as_deref()
        .unwrap_or_else(|| panic!("expected a redirect, got {} {}", page.status, page.body));
    query_of(location)
}

/// Waits (polling every 100 ms, at most `seconds`) until `ready` holds; returns whether it did.
pub async fn eventually(seconds: u64, mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..seconds * 10 {
        if ready() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ready()
}

// ---- Endpoint and page helpers -------------------------------------------------------------

/// A fresh PKCE S256 pair: `(code_challenge, code_verifier)`.
pub fn pkce() -> (String, String) {
    let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
    (challenge.as_str().to_owned(), verifier.secret().to_owned())
}

/// Alice signs in to `app` (the confidential client) with `scope`; the code is redeemed and the
/// token response returned.
pub async fn tokens_for(app: &TestApp, scope: &str) -> Value {
    tokens_via(app, &mut Browser::new(), APP_RP, &[("scope", scope)], ALICE)
        .await
        .body
}

/// Whether `location` sends the browser to the fake Discord's authorization endpoint.
pub fn goes_to_discord(app: &TestApp, location: &str) -> bool {
    location.starts_with(app.discord.authorize_url().as_str())
}

/// Starts a login for the `app` client in `browser` (which gets the binding cookie) and lets
/// the fake Discord approve it as Alice; returns the callback URL Discord sent the browser to,
/// not yet opened.
pub async fn callback_url_after_discord(
    app: &TestApp,
    browser: &mut Browser,
    state: &str,
) -> String {
    let start = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[("state", state)]))
        .await;
    let to_discord = start.location.expect("authorize redirects to Discord");
    app.discord_approves(browser, &to_discord, ALICE).await
}

/// Undoes HTML escaping the way a browser reads an attribute value.
pub fn unescape_html(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The first link (`href`) on an HTML page, unescaped; `None` when the page has none.
pub fn first_link(body: &str) -> Option<String> {
    let start = body.find("href=\"")? + "href=\"".len();
    let end = start + body[start..].find('"')?;
    Some(unescape_html(&body[start..end]))
}

/// The query of the first link on a page that must carry one back to the app.
pub fn link_back_params(body: &str) -> HashMap<String, String> {
    let link = first_link(body).unwrap_or_else(|| panic!("no link on the page: {body}"));
    query_of(&link)
}

/// The raw `Set-Cookie` line that sets `name`, if any.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|line| line.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value part of a `Set-Cookie` line (`name=value; …` → `value`).
pub fn cookie_value(set_cookie_line: &str) -> String {
    let first = set_cookie_line.split(';').next().unwrap_or_default();
    first
        .split_once('=')
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}
