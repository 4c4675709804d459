//! Helpers for the refresh, revocation, logout and consent suites: a registered client as the
//! tests use it, a signed-in grant, the token-endpoint calls they repeat, introspection and
//! revocation, hidden form fields, and POSTs that carry the browser's session cookie.

use crate::browser::{Browser, Page, query_of};
use crate::endpoint_helpers::unescape_html;
use crate::helpers::{APP, APP_REDIRECT, APP_SECRET, OTHER, OTHER_REDIRECT, OTHER_SECRET, TestApp};
use serde_json::Value;

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

/// Status and JSON body of an endpoint's answer.
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

    /// A string member of the body; panics with the body when it is missing.
    pub fn text(&self, name: &str) -> String {
        self.body[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            .to_owned()
    }
}

/// Redeems `code` as `rp` (Basic auth).
pub async fn redeem_as(app: &TestApp, rp: Rp, code: &str) -> Reply {
    Reply::read(
        app.token(
            Some((rp.id, rp.secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", rp.redirect),
            ],
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
    let to_discord = first
        .location
        .as_deref()
        .is_some_and(|l| l.starts_with(app.discord.authorize_url().as_str()));
    if !to_discord {
        return first;
    }
    app.discord.sign_in_as(Some(user));
    let back = browser
        .get(first.location.as_deref().unwrap_or_default())
        .await;
    let callback = back.location.expect("Discord redirects back");
    browser.get(&callback).await
}

/// The query of a page's redirect; panics with the page when it is not one.
pub fn redirect_params(page: &Page) -> std::collections::HashMap<String, String> {
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
