//! Helpers shared by the endpoint-rule suites (authorize, callback, token, userinfo): PKCE
//! pairs, a token response for a scope, a login stopped at the callback, links on error pages
//! and raw `Set-Cookie` lines.

use crate::browser::{Browser, query_of};
use crate::helpers::{ALICE, APP, APP_REDIRECT, TestApp};
use std::collections::HashMap;

/// A fresh PKCE S256 pair: `(code_challenge, code_verifier)`.
pub fn pkce() -> (String, String) {
    let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
    (challenge.as_str().to_owned(), verifier.secret().to_owned())
}

/// Alice signs in to `app` (the confidential client) with `scope`; the code is redeemed and the
/// token response returned.
pub async fn tokens_for(app: &TestApp, scope: &str) -> serde_json::Value {
    let code = app
        .code_for(
            &mut Browser::new(),
            APP,
            APP_REDIRECT,
            &[("scope", scope)],
            ALICE,
        )
        .await;
    let response = app.redeem(&code, APP_REDIRECT, None).await;
    assert_eq!(response.status(), 200, "the code is redeemed");
    response.json().await.expect("a JSON token response")
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
    assert!(goes_to_discord(app, &to_discord), "{to_discord}");
    app.discord.sign_in_as(Some(ALICE));
    let back = browser.get(&to_discord).await;
    let callback = back.location.expect("Discord redirects back");
    assert!(
        callback.starts_with(&format!("{}/callback/discord", app.address)),
        "{callback}"
    );
    callback
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

/// Status, headers and JSON body of an endpoint's answer.
pub struct JsonAnswer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body parsed as JSON (`Null` when it is not JSON).
    pub body: serde_json::Value,
}

/// Reads an answer whose body should be JSON.
pub async fn json_answer(response: reqwest::Response) -> JsonAnswer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    JsonAnswer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    }
}

impl JsonAnswer {
    /// The `error` code, or `""` when the body has none.
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
}
