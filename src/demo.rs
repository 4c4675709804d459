//! The demo app for `guildgate dev`: a relying party built on the `openidconnect` crate that
//! signs in through guildgate and shows the ID token's claims and the UserInfo answer, greeting
//! the person by `name` (their server nickname, with a profile guild) and showing the role
//! guildgate maps for it ([`ROLE_CLAIM`]). With the
//! bot, it offers "kick me from the demo server" and receives back-channel logouts (verified
//! against guildgate's JWKS), so its page shows the sign-out live.

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
use std::sync::{Arc, Mutex};

/// The mapped claim the demo app reads its role from (`guildgate dev` configures it).
pub const ROLE_CLAIM: &str = "demo_role";

/// The demo's own session cookie.
const DEMO_COOKIE: &str = "demo_session";
/// OIDC Back-Channel Logout 1.0 §2.4: the `events` member a logout token carries.
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Removes a person (by Discord id) from the demo server; `dev` passes the fake Discord's kick.
#[derive(Clone)]
pub struct Kick(pub Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for Kick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kick")
    }
}

/// A person signed in to the demo app.
struct DemoSession {
    sub: String,
    sid: Option<String>,
    name: String,
    username: String,
    role: Option<String>,
    claims: String,
    userinfo: String,
    signed_out: bool,
}

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
    /// With the bot: "kick me from the demo server".
    pub kick: Option<Kick>,
}

struct Demo {
    config: DemoConfig,
    http: openidconnect::reqwest::Client,
    /// csrf state → (nonce, PKCE verifier) of logins in progress.
    pending: Mutex<HashMap<String, (Nonce, PkceCodeVerifier)>>,
    /// cookie value → signed-in person.
    sessions: Mutex<HashMap<String, DemoSession>>,
}

/// Starts the demo app on `listener`; returns once it is bound.
pub fn start(config: DemoConfig, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let http = crate::tls::client_builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .map_err(std::io::Error::other)?;
    let demo = web::Data::new(Demo {
        config,
        http,
        pending: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
    });
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(demo.clone())
            .route("/", web::get().to(home))
            .route("/login", web::get().to(login))
            .route("/callback", web::get().to(callback))
            .route("/me", web::get().to(me))
            .route("/kick", web::post().to(kick))
            .route("/backchannel", web::post().to(backchannel))
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
        Ok(session) => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            if let Ok(mut sessions) = demo.sessions.lock() {
                sessions.insert(id.clone(), session);
            }
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/me"))
                .insert_header((
                    header::SET_COOKIE,
                    format!("{DEMO_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax"),
                ))
                .finish()
        }
        Err(e) => render(
            &demo,
            minijinja::context! { title => "Demo app", error => e },
        ),
    }
}

/// The signed-in page; it reloads every few seconds while the bot can sign people out live.
async fn me(demo: web::Data<Demo>, req: actix_web::HttpRequest) -> HttpResponse {
    let cookie = req.cookie(DEMO_COOKIE).map(|c| c.value().to_owned());
    let live = demo.config.kick.is_some();
    let ctx = cookie.and_then(|c| {
        let sessions = demo.sessions.lock().ok()?;
        let s = sessions.get(&c)?;
        let title = if s.signed_out {
            "Signed out"
        } else {
            "Signed in"
        };
        Some(minijinja::context! {
            title => title, name => s.name, username => s.username, role => s.role,
            role_claim => ROLE_CLAIM, claims => s.claims, userinfo => s.userinfo,
            signed_out => s.signed_out, live => live,
        })
    });
    match ctx {
        Some(ctx) => render(&demo, ctx),
        None => home(demo).await,
    }
}

/// "Kick me from the demo server": the fake Discord removes the person and its Gateway tells
/// guildgate, which signs the demo app out by back-channel logout.
async fn kick(demo: web::Data<Demo>, req: actix_web::HttpRequest) -> HttpResponse {
    let sub = req.cookie(DEMO_COOKIE).and_then(|c| {
        let sessions = demo.sessions.lock().ok()?;
        sessions.get(c.value()).map(|s| s.sub.clone())
    });
    if let (Some(sub), Some(kick)) = (sub, &demo.config.kick) {
        (kick.0)(&sub);
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/me"))
        .finish()
}

/// Back-channel logout receiver (OIDC Back-Channel Logout 1.0 §2.5): verifies the logout token
/// with guildgate's JWKS, then marks the named session (or every session of the person) signed
/// out. 400 for a token that does not verify.
async fn backchannel(
    demo: web::Data<Demo>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let Some(token) = form.get("logout_token") else {
        return HttpResponse::BadRequest().finish();
    };
    let claims = match verify_logout_token(&demo, token).await {
        Ok(claims) => claims,
        Err(e) => {
            tracing::warn!(error = %e, "demo app: logout token refused");
            return HttpResponse::BadRequest().finish();
        }
    };
    let sid = claims["sid"].as_str();
    let sub = claims["sub"].as_str();
    if let Ok(mut sessions) = demo.sessions.lock() {
        for s in sessions.values_mut() {
            let matches = match sid {
                Some(sid) => s.sid.as_deref() == Some(sid),
                None => Some(s.sub.as_str()) == sub,
            };
            if matches {
                s.signed_out = true;
            }
        }
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

async fn verify_logout_token(demo: &Demo, token: &str) -> Result<serde_json::Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let jwks: jsonwebtoken::jwk::JwkSet = demo
        .http
        .get(format!("{}/jwks.json", demo.config.issuer))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let kid = header.kid.as_deref().ok_or("no kid")?;
    let jwk = jwks.find(kid).ok_or("unknown kid")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[&demo.config.issuer]);
    validation.set_audience(&[&demo.config.client_id]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    if claims["events"].get(BACKCHANNEL_EVENT).is_none() {
        return Err("not a logout token".into());
    }
    Ok(claims)
}

async fn finish_login(demo: &Demo, query: &HashMap<String, String>) -> Result<DemoSession, String> {
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
    let username = claims
        .preferred_username()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_else(|| claims.subject().as_str().to_owned());
    // `name` is the server nickname when guildgate has a profile guild for this app.
    let name = raw_claims["name"]
        .as_str()
        .map_or_else(|| username.clone(), str::to_owned);
    let role = match &raw_claims[ROLE_CLAIM] {
        serde_json::Value::Null => None,
        serde_json::Value::String(role) => Some(role.clone()),
        other => Some(other.to_string()),
    };
    Ok(DemoSession {
        sub: claims.subject().as_str().to_owned(),
        sid: raw_claims["sid"].as_str().map(str::to_owned),
        name,
        username,
        role,
        claims: serde_json::to_string_pretty(&raw_claims).map_err(|e| e.to_string())?,
        userinfo: serde_json::to_string_pretty(&raw_userinfo).map_err(|e| e.to_string())?,
        signed_out: false,
    })
}
