//! `/account`: the person's own page (who they are, the apps they used, their sessions) and its
//! three POST actions. Signed in through the SSO session; without one, a Discord sign-in that
//! comes back here.
//!
//! Every action is a POST carrying a CSRF token derived from the session cookie (checked in
//! constant time), refused when the browser names another origin in `Origin`, and
//! the session cookie is `SameSite=Lax`, so no other site can make a browser act here.

use super::respond::{self, redirect};
use super::{cookies, form, page};
use crate::domain::{ClientId, SessionId};
use crate::flows::account::{self, AccountError, Overview};
use crate::flows::session;
use crate::flows::upstream::SignInFor;
use crate::pages;
use crate::state::AppState;
use crate::store::SessionRecord;
use actix_web::http::{StatusCode, header};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use time::OffsetDateTime;

/// Mounts the account page, its sign-in and its actions.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(show))
        .route("/account/sign-in", web::get().to(sign_in))
        .route("/account/revoke", web::post().to(revoke))
        .route("/account/end-session", web::post().to(end_session))
        .route(
            "/account/sign-out-everywhere",
            web::post().to(sign_out_everywhere),
        );
}

/// The browser's live session and its cookie value, if any.
async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
    now: OffsetDateTime,
) -> Result<Option<(SessionRecord, String)>, HttpResponse> {
    let Some(secret) = cookies::session_value(req, state) else {
        return Ok(None);
    };
    match session::current(&state.context(), Some(&secret), now).await {
        Ok(current) => Ok(current.map(|s| (s, secret))),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the session");
            Err(failed(e.is_temporary()))
        }
    }
}

#[tracing::instrument(skip_all)]
async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let now = state.clock.now();
    let (session, secret) = match signed_in(&req, &state, now).await {
        Ok(Some(found)) => found,
        Ok(None) => return sign_in_page(&state),
        Err(response) => return response,
    };
    if let Err(e) = state.store.touch_session(&session.id, now).await {
        tracing::warn!(error = %e, "could not record session use");
    }
    match account::overview(&state.context(), &session, now).await {
        Ok(Some(overview)) => account_page(&state, &overview, &secret),
        Ok(None) => sign_in_page(&state),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the account");
            failed(e.is_temporary())
        }
    }
}

/// `GET /account/sign-in[?another=1]`: a Discord sign-in that returns to `/account`.
#[tracing::instrument(skip_all)]
async fn sign_in(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let another = form::pairs(req.query_string().as_bytes())
        .iter()
        .any(|(k, v)| k == "another" && v == "1");
    let now = state.clock.now();
    respond::to_discord(&req, &state, &SignInFor::account(another), now).await
}

/// The session, the form and the checks every action shares: a live session, a form body,
/// a same-origin `Origin` when one is sent, and the session's CSRF token.
async fn authorized_action(
    req: &HttpRequest,
    body: &Bytes,
    state: &AppState,
    now: OffsetDateTime,
) -> Result<(SessionRecord, form::FormParams), HttpResponse> {
    // Our pages' `Referrer-Policy: no-referrer` makes browsers send `Origin: null` with their
    // own form posts (Fetch §3.2), so `null` proves nothing either way and is left to the
    // CSRF token; a named origin must be the issuer's.
    let origin = req.headers().get(header::ORIGIN).map(|v| v.to_str().ok());
    if let Some(origin) = origin.filter(|o| *o != Some("null")) {
        let expected = state.config().issuer.origin();
        if origin != Some(expected.as_str()) {
            tracing::warn!("account action from another origin refused");
            return Err(refused());
        }
    }
    let params = form::parse(req, body).map_err(|_| refused())?;
    let (session, secret) = match signed_in(req, state, now).await? {
        Some(found) => found,
        None => return Err(redirect(req, &state.config().issuer.endpoint("/account"))),
    };
    if !account::csrf_matches(&secret, params.get("csrf").unwrap_or_default()) {
        tracing::warn!(sid = %session.id, "account action with a wrong CSRF token refused");
        return Err(refused());
    }
    Ok((session, params))
}

#[tracing::instrument(skip_all)]
async fn revoke(req: HttpRequest, body: Bytes, state: web::Data<AppState>) -> HttpResponse {
    let now = state.clock.now();
    let (session, params) = match authorized_action(&req, &body, &state, now).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let Some(client_id) = params.get("client_id") else {
        return refused();
    };
    // Not a client id: there is nothing of it to revoke.
    let Ok(client_id) = ClientId::parse(client_id) else {
        return redirect(&req, &state.config().issuer.endpoint("/account"));
    };
    match account::revoke_app(&state.context(), &session.user_id, &client_id, now).await {
        Ok(_) => redirect(&req, &state.config().issuer.endpoint("/account")),
        Err(e) => {
            tracing::error!(error = %e, "cannot revoke the app");
            failed(e.is_temporary())
        }
    }
}

#[tracing::instrument(skip_all)]
async fn end_session(req: HttpRequest, body: Bytes, state: web::Data<AppState>) -> HttpResponse {
    let now = state.clock.now();
    let (session, params) = match authorized_action(&req, &body, &state, now).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let Some(target) = params.get("session") else {
        return refused();
    };
    let outcome = match SessionId::parse(target) {
        Ok(target) => account::sign_out_session(&state.context(), &session.user_id, &target, now)
            .await
            .map(|()| target),
        // Not a session id: it names none of this person's sessions.
        Err(_) => Err(AccountError::NotYourSession),
    };
    match outcome {
        Ok(target) if target == session.id => signed_out(&state),
        Ok(_) => redirect(&req, &state.config().issuer.endpoint("/account")),
        Err(AccountError::NotYourSession) => page(
            StatusCode::NOT_FOUND,
            "No such session",
            "That session is not one of yours, or it has already ended.",
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot end the session");
            failed(e.is_temporary())
        }
    }
}

#[tracing::instrument(skip_all)]
async fn sign_out_everywhere(
    req: HttpRequest,
    body: Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let now = state.clock.now();
    let (session, _) = match authorized_action(&req, &body, &state, now).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    match account::sign_out_everywhere(&state.context(), &session.user_id, now).await {
        Ok(ended) => {
            tracing::info!(user = %session.user_id, sessions = ended, "signed out everywhere");
            signed_out(&state)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot sign out everywhere");
            failed(e.is_temporary())
        }
    }
}

fn account_page(state: &AppState, overview: &Overview, secret: &str) -> HttpResponse {
    let user = &overview.user;
    let apps: Vec<_> = overview
        .apps
        .iter()
        .map(|app| {
            minijinja::context! {
                client_id => app.client_id,
                name => app.name,
                last_sign_in => app.last_sign_in.map(when),
                scopes => app.scopes,
                claims => app.claims,
                consented => app.consented,
            }
        })
        .collect();
    let sessions: Vec<_> = overview
        .sessions
        .iter()
        .map(|s| {
            minijinja::context! {
                id => s.id,
                browser => s.browser,
                ip => s.ip,
                started => when(s.started),
                last_used => when(s.last_used),
                current => s.current,
            }
        })
        .collect();
    let html = pages::render(
        "account.html",
        minijinja::context! {
            title => "Your account",
            user_id => user.id,
            username => user.username,
            display_name => user.global_name.as_deref().unwrap_or(&user.username),
            avatar_url => overview.avatar_url,
            apps => apps,
            sessions => sessions,
            csrf => account::csrf_token(secret),
            revoke_action => state.config().issuer.endpoint("/account/revoke"),
            end_session_action => state.config().issuer.endpoint("/account/end-session"),
            everywhere_action => state.config().issuer.endpoint("/account/sign-out-everywhere"),
        },
    );
    html_response(StatusCode::OK, html)
}

fn sign_in_page(state: &AppState) -> HttpResponse {
    let href = state.config().issuer.endpoint("/account/sign-in");
    html_response(
        StatusCode::OK,
        pages::message_page_with_link(
            "Your account",
            "Sign in with Discord to see the apps you use and where you are signed in.",
            pages::Link::to(&href, "Sign in with Discord"),
        ),
    )
}

/// The signed-out page, clearing the cookie of a session that no longer exists.
fn signed_out(state: &AppState) -> HttpResponse {
    let href = state.config().issuer.endpoint("/account");
    let mut response = html_response(
        StatusCode::OK,
        pages::message_page_with_link(
            "You are signed out",
            "You have been signed out of guildgate. You can close this window.",
            pages::Link::to(&href, "Your account"),
        ),
    );
    let mut removal = cookies::session(state, "");
    removal.make_removal();
    if let Err(e) = response.add_cookie(&removal) {
        tracing::warn!(error = %e, "cannot clear the session cookie");
    }
    response
}

fn html_response(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(html)
}

fn refused() -> HttpResponse {
    page(
        StatusCode::FORBIDDEN,
        "This request was refused",
        "The form did not come from your account page, or it has expired. Open your account page again and retry.",
    )
}

fn failed(temporary: bool) -> HttpResponse {
    super::failure_page(
        temporary,
        "Your account could not be shown or changed. Please try again in a moment.",
    )
}

/// A time for people: `2026-12-01 06:30 UTC`.
fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}
