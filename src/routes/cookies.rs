//! The two cookies guildgate sets: the SSO session and the short-lived Discord-login binding.
//!
//! With an https issuer both names carry the `__Host-` prefix (RFC 6265bis §4.1.3.2): browsers
//! accept such a cookie only when it is `Secure`, set from a secure origin, with `Path=/` and no
//! `Domain`, so neither a sibling subdomain nor a plain-http page can plant or overwrite it.
//! Whatever the issuer, a request carrying two cookies of one name is treated as carrying
//! none: which of the two comes first is up to the browser, so a planted one must not win.

use crate::state::AppState;
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};

/// Name of the browser-binding cookie for pending Discord logins (before any prefix).
pub const BINDING_COOKIE: &str = "guildgate_login";

/// The prefix browsers reserve for host-only, secure, whole-site cookies.
const HOST_PREFIX: &str = "__Host-";

/// The name a cookie goes by for this issuer: `__Host-` + `name` on https.
fn name_for(state: &AppState, name: &str) -> String {
    if state.https {
        format!("{HOST_PREFIX}{name}")
    } else {
        name.to_owned()
    }
}

/// The session cookie's name (`session.cookie_name`, prefixed on https).
pub fn session_name(state: &AppState) -> String {
    name_for(state, &state.settings.session.cookie_name)
}

/// The binding cookie's name (prefixed on https).
pub fn binding_name(state: &AppState) -> String {
    name_for(state, BINDING_COOKIE)
}

/// The value of the only cookie called `name`; `None` when there is none, when there are
/// several, or when the Cookie header cannot be read.
pub fn single(req: &HttpRequest, name: &str) -> Option<String> {
    let cookies = req.cookies().ok()?;
    let mut named = cookies.iter().filter(|c| c.name() == name);
    let first = named.next()?;
    if named.next().is_some() {
        tracing::warn!(
            cookie = name,
            "the request carried a cookie twice; ignoring both"
        );
        return None;
    }
    Some(first.value().to_owned())
}

/// The session cookie's value, if the request carries exactly one.
pub fn session_value(req: &HttpRequest, state: &AppState) -> Option<String> {
    single(req, &session_name(state))
}

/// The binding cookie's value, if the request carries exactly one.
pub fn binding_value(req: &HttpRequest, state: &AppState) -> Option<String> {
    single(req, &binding_name(state))
}

/// `HttpOnly`, `SameSite=Lax` (sent on Discord's top-level redirect back). On https: `Secure`
/// and `Path=/` (the `__Host-` rules); on a loopback http issuer, scoped to the issuer's path.
fn base<'c>(state: &AppState, name: String, value: String, max_age: Duration) -> Cookie<'c> {
    let https = state.https;
    let path = if https {
        "/".to_owned()
    } else {
        state.config().issuer.path().to_owned()
    };
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .finish()
}

/// The SSO session cookie.
pub fn session<'c>(state: &AppState, secret: &str) -> Cookie<'c> {
    let ttl = Duration::seconds(
        i64::try_from(state.config().lifetimes.session.as_secs()).unwrap_or(i64::MAX),
    );
    base(state, session_name(state), secret.to_owned(), ttl)
}

/// The binding cookie, living as long as a pending login.
pub fn binding<'c>(state: &AppState, value: &str) -> Cookie<'c> {
    base(
        state,
        binding_name(state),
        value.to_owned(),
        Duration::seconds(crate::flows::upstream::UPSTREAM_LOGIN_TTL.whole_seconds()),
    )
}

/// The removal of the binding cookie, for a login the callback has taken: the value names
/// nothing any more, so the browser stops sending it, and its next login has nothing to
/// replace (which would cost that login a delete).
pub fn binding_removal<'c>(state: &AppState) -> Cookie<'c> {
    let mut removal = binding(state, "");
    removal.make_removal();
    removal
}
