//! The demo app for `guildgate dev`: a relying party built on the `openidconnect` crate that
//! signs in through guildgate and shows the ID token's claims and the UserInfo answer.

use crate::pages;
use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Mutex;

/// How the demo app is registered at guildgate.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// guildgate's issuer.
    pub issuer: String,
    /// The demo's client id.
    pub client_id: String,
    /// The demo's client secret.
    pub client_secret: String,
    /// The demo's redirect URI (`{base}/callback`).
    pub redirect_uri: String,
}

struct Demo {
    config: DemoConfig,
    http: openidconnect::reqwest::Client,
    /// csrf state → (nonce, PKCE verifier) of logins in progress.
    pending: Mutex<HashMap<String, (Nonce, PkceCodeVerifier)>>,
}

/// Starts the demo app on `listener`; returns once it is bound.
pub fn start(config: DemoConfig, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .map_err(std::io::Error::other)?;
    let demo = web::Data::new(Demo {
        config,
        http,
        pending: Mutex::new(HashMap::new()),
    });
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(demo.clone())
            .route("/", web::get().to(home))
            .route("/login", web::get().to(login))
            .route("/callback", web::get().to(callback))
    })
    .workers(1)
    .listen(listener)?
    .run())
}

fn render(demo: &Demo, ctx: minijinja::Value) -> HttpResponse {
    let ctx = minijinja::context! { issuer => demo.config.issuer, ..ctx };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(pages::render("demo.html", ctx))
}

async fn home(demo: web::Data<Demo>) -> HttpResponse {
    render(&demo, minijinja::context! { title => "Demo app" })
}

/// Discovers guildgate and builds the RP client (per request: a demo favours clarity).
macro_rules! rp_client {
    ($demo:expr) => {{
        let issuer = IssuerUrl::new($demo.config.issuer.clone()).map_err(|e| e.to_string())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &$demo.http)
            .await
            .map_err(|e| format!("discovery failed: {e}"))?;
        let redirect =
            RedirectUrl::new($demo.config.redirect_uri.clone()).map_err(|e| e.to_string())?;
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new($demo.config.client_id.clone()),
            Some(ClientSecret::new($demo.config.client_secret.clone())),
        )
        .set_redirect_uri(redirect)
    }};
}

async fn login(demo: web::Data<Demo>) -> HttpResponse {
    match start_login(&demo).await {
        Ok(url) => HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .finish(),
        Err(e) => render(
            &demo,
            minijinja::context! { title => "Demo app", error => e },
        ),
    }
}

async fn start_login(demo: &Demo) -> Result<String, String> {
    let client = rp_client!(demo);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("groups".into()))
        .add_scope(Scope::new("connections".into()))
        .set_pkce_challenge(challenge)
        .url();
    demo.pending
        .lock()
        .map_err(|_| "demo state poisoned".to_owned())?
        .insert(csrf.secret().clone(), (nonce, verifier));
    Ok(url.to_string())
}

async fn callback(
    demo: web::Data<Demo>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    match finish_login(&demo, &query).await {
        Ok((name, claims, userinfo)) => render(
            &demo,
            minijinja::context! { title => "Signed in", name => name, claims => claims, userinfo => userinfo },
        ),
        Err(e) => render(
            &demo,
            minijinja::context! { title => "Demo app", error => e },
        ),
    }
}

async fn finish_login(
    demo: &Demo,
    query: &HashMap<String, String>,
) -> Result<(String, String, String), String> {
    if let Some(error) = query.get("error") {
        let description = query
            .get("error_description")
            .map(String::as_str)
            .unwrap_or("");
        return Err(format!("{error}: {description}"));
    }
    let state = query.get("state").ok_or("no state in the callback")?;
    let code = query.get("code").ok_or("no code in the callback")?;
    let (nonce, verifier) = demo
        .pending
        .lock()
        .map_err(|_| "demo state poisoned".to_owned())?
        .remove(state)
        .ok_or("unknown or already used state (CSRF check failed)")?;
    let client = rp_client!(demo);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(verifier)
        .request_async(&demo.http)
        .await
        .map_err(|e| format!("token request failed: {e}"))?;
    let id_token = tokens
        .id_token()
        .ok_or("no ID token in the token response")?;
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .map_err(|e| format!("ID token rejected: {e}"))?;
    // Verified by the library above; shown raw below so every claim (e.g. `groups`, which the
    // library's standard claim set does not model) is visible.
    let _verified: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .map_err(|e| e.to_string())?
        .request_async(&demo.http)
        .await
        .map_err(|e| format!("userinfo failed: {e}"))?;
    let raw_userinfo: serde_json::Value = demo
        .http
        .get(format!("{}/userinfo", demo.config.issuer))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .map_err(|e| format!("userinfo failed: {e}"))?
        .json()
        .await
        .map_err(|e| format!("userinfo failed: {e}"))?;
    let raw_claims = id_token
        .to_string()
        .split('.')
        .nth(1)
        .and_then(|p| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .ok_or("the ID token payload is not JSON")?;
    let name = claims
        .preferred_username()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_else(|| claims.subject().as_str().to_owned());
    Ok((
        name,
        serde_json::to_string_pretty(&raw_claims).map_err(|e| e.to_string())?,
        serde_json::to_string_pretty(&raw_userinfo).map_err(|e| e.to_string())?,
    ))
}
