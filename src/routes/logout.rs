//! `GET`/`POST /logout`: the end_session_endpoint (OIDC RP-Initiated Logout 1.0).

use super::{cookies, form, page};
use crate::flows::logout::{self, LogoutOutcome};
use crate::pages;
use crate::state::AppState;
use actix_web::http::{Method, StatusCode, header};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use std::collections::HashMap;

/// Mounts the logout endpoint.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/logout")
            .route(web::get().to(logout_endpoint))
            .route(web::post().to(logout_endpoint)),
    );
}

#[tracing::instrument(skip_all)]
async fn logout_endpoint(
    req: HttpRequest,
    body: Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let raw = if req.method() == Method::POST && form::is_form(&req) {
        form::pairs(&body)
    } else {
        form::pairs(req.query_string().as_bytes())
    };
    // First value wins; repeated logout parameters cannot redirect anywhere unregistered.
    let mut params: HashMap<String, String> = HashMap::new();
    for (k, v) in raw {
        params.entry(k).or_insert(v);
    }
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let secret = cookies::session_value(&req, &state);
    let confirmed_csrf = (req.method() == Method::POST && get("confirm") == Some("yes"))
        .then(|| get("csrf"))
        .flatten();
    let input = logout::LogoutInput {
        id_token_hint: get("id_token_hint"),
        client_id: get("client_id"),
        post_logout_redirect_uri: get("post_logout_redirect_uri"),
        state: get("state"),
        confirmed_csrf,
        session_cookie: secret.as_deref(),
    };
    let now = state.clock.now();
    match logout::run(&super::flow_context(&state, &req), input, now).await {
        Ok(LogoutOutcome::LinkNotValid) => page(
            StatusCode::BAD_REQUEST,
            "This sign-out link is not valid",
            "The app that sent you here does not match the sign-in it refers to, so nothing was changed.",
        ),
        Ok(LogoutOutcome::Confirm(request)) => confirm_page(
            &state,
            &request,
            secret.as_deref().unwrap_or_default(),
            &params,
        ),
        Ok(LogoutOutcome::SignedOut(request)) => signed_out(&state, &request),
        Err(e) => {
            tracing::error!(cause = ?e.internal, "cannot sign out");
            super::failure_page(e.is_temporary(), "Signing out failed. Please try again.")
        }
    }
}

/// Clears the cookie, then redirects to a registered URI or shows the signed-out page.
fn signed_out(state: &AppState, request: &logout::LogoutRequest) -> HttpResponse {
    let mut response = match logout::redirect_after(request) {
        Some(location) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        None => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("text/html; charset=utf-8")
            .body(pages::message_page_with_link(
                "You are signed out",
                "You have been signed out of guildgate. You can close this window.",
                pages::Link::to(&state.config().issuer.endpoint("/account"), "Your account"),
            )),
    };
    let mut removal = cookies::session(state, "");
    removal.make_removal();
    if let Err(e) = response.add_cookie(&removal) {
        tracing::warn!(error = %e, "cannot clear the session cookie");
    }
    response
}

fn confirm_page(
    state: &AppState,
    request: &logout::LogoutRequest,
    secret: &str,
    params: &HashMap<String, String>,
) -> HttpResponse {
    let fields: Vec<(&str, &str)> = [
        "id_token_hint",
        "client_id",
        "post_logout_redirect_uri",
        "state",
    ]
    .into_iter()
    .filter_map(|k| params.get(k).map(|v| (k, v.as_str())))
    .collect();
    let html = pages::render(
        "logout.html",
        minijinja::context! {
            title => "Sign out?",
            app => request.client.as_ref().map(|c| c.name.clone()),
            action => state.config().issuer.endpoint("/logout"),
            csrf => logout::csrf_token(secret),
            fields => fields,
        },
    );
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .content_type("text/html; charset=utf-8")
        .body(html)
}
