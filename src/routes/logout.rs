//! `GET`/`POST /logout`: the end_session_endpoint (OIDC RP-Initiated Logout 1.0).

use super::{cookies, form, page};
use crate::flows::{logout, session};
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
    let request = match logout::parse(
        &state.context(),
        get("id_token_hint"),
        get("client_id"),
        get("post_logout_redirect_uri"),
        get("state"),
    ) {
        Ok(request) => request,
        Err(logout::LogoutError::ClientMismatch) => {
            return page(
                StatusCode::BAD_REQUEST,
                "This sign-out link is not valid",
                "The app that sent you here does not match the sign-in it refers to, so nothing was changed.",
            );
        }
    };
    let now = state.clock.now();
    let secret = cookies::session_value(&req, &state);
    let current = match session::current(&state.context(), secret.as_deref(), now).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the session");
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Signing out failed. Please try again.",
            );
        }
    };
    let Some(current) = current else {
        return signed_out(&state, &request);
    };
    let confirmed_by_form = req.method() == Method::POST
        && get("confirm") == Some("yes")
        && secret
            .as_deref()
            .is_some_and(|s| get("csrf") == Some(logout::csrf_token(s).as_str()));
    if !confirmed_by_form && !logout::is_confirmed_by_hint(&state.context(), &request, &current) {
        return confirm_page(
            &state,
            &request,
            secret.as_deref().unwrap_or_default(),
            &params,
        );
    }
    if let Err(e) = logout::sign_out(
        &super::flow_context(&state, &req),
        &request,
        &current.id,
        now,
    )
    .await
    {
        tracing::error!(cause = ?e.internal, "cannot end the session");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Signing out failed. Please try again.",
        );
    }
    signed_out(&state, &request)
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
                pages::Link {
                    href: &state.config().issuer.endpoint("/account"),
                    label: "Your account",
                },
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
