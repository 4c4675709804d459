//! The two cookies guildgate sets: the SSO session and the short-lived Discord-login binding.

use crate::state::AppState;
use actix_web::cookie::{Cookie, SameSite, time::Duration};

/// Name of the browser-binding cookie for pending Discord logins.
pub const BINDING_COOKIE: &str = "guildgate_login";

/// `HttpOnly`, `SameSite=Lax` (sent on Discord's top-level redirect back), `Secure` on https,
/// scoped to the issuer's path.
fn base<'c>(state: &AppState, name: String, value: String, max_age: Duration) -> Cookie<'c> {
    Cookie::build(name, value)
        .path(state.config.issuer.path())
        .http_only(true)
        .secure(state.config.issuer.is_https())
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .finish()
}

/// The SSO session cookie.
pub fn session<'c>(state: &AppState, secret: &str) -> Cookie<'c> {
    let ttl = Duration::seconds(
        i64::try_from(state.config.lifetimes.session.as_secs()).unwrap_or(i64::MAX),
    );
    base(
        state,
        state.settings.session.cookie_name.clone(),
        secret.to_owned(),
        ttl,
    )
}

/// The binding cookie, living as long as a pending login.
pub fn binding<'c>(state: &AppState, value: &str) -> Cookie<'c> {
    base(
        state,
        BINDING_COOKIE.to_owned(),
        value.to_owned(),
        Duration::seconds(crate::flows::upstream::UPSTREAM_LOGIN_TTL.whole_seconds()),
    )
}
