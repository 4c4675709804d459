//! The Discord leg in HTTP: sending the browser to Discord with a fresh binding cookie, and
//! `GET /callback/discord`, Discord's redirect back to us.

use super::device_pages;
use super::respond;
use super::{client_auth, cookies, page};
use crate::flows::signed_in::{self, AfterSignIn};
use crate::flows::upstream::{self, CallbackError, CallbackParams, Failure};
use crate::pages;
use crate::state::AppState;
use crate::store::SessionDevice;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};

/// Mounts the callback.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(callback);
}

#[get("/callback/discord")]
#[tracing::instrument(skip_all)]
async fn callback(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut params = CallbackParams::default();
    for (name, value) in super::form::pairs(req.query_string().as_bytes()) {
        let slot = match name.as_str() {
            "code" => &mut params.code,
            "state" => &mut params.state,
            "iss" => &mut params.iss,
            "error" => &mut params.error,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return unmatched();
        }
    }
    let binding = cookies::binding_value(&req, &state);
    let now = state.clock.now();
    let ctx = super::flow_context(&state, &req);
    let device = SessionDevice::new(
        req.headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        Some(client_auth::source_address(&req).to_string()),
    );
    let completed = upstream::complete(&ctx, params, binding.as_deref(), device, now).await;
    // Every outcome but these two comes after the login was taken from the store.
    let taken = !matches!(
        completed,
        Err(CallbackError::Unmatched | CallbackError::Internal(_))
    );
    let mut response = match completed {
        Ok(done) => match signed_in::after_sign_in(&ctx, &done, now).await {
            Ok(after) => {
                let mut response = match after {
                    AfterSignIn::App(next) => respond::render_finish(&req, &state, next),
                    AfterSignIn::Account(location) => respond::redirect(&req, &location),
                    AfterSignIn::Device(page) => device_pages::render(&state, page),
                };
                tracing::info!(user = %done.session.user_id, sid = %done.session.id, "signed in with Discord");
                if let Err(e) =
                    response.add_cookie(&cookies::session(&state, done.session_secret.expose()))
                {
                    tracing::error!(error = %e, "cannot set the session cookie");
                }
                response
            }
            // The sign-in may not have been written: no session cookie for it.
            Err(e) => respond::server_error(e),
        },
        Err(CallbackError::Unmatched) => unmatched(),
        Err(CallbackError::Refused(refusal)) => respond::denied(&state, &refusal),
        Err(CallbackError::ToApp {
            redirect,
            explain: None,
            ..
        }) => respond::to_app(&req, &redirect),
        Err(CallbackError::ToApp {
            redirect,
            explain: Some((title, message)),
            failure,
        }) => {
            let mut href = String::new();
            HttpResponse::build(match failure {
                Failure::BadRequest | Failure::Refused => StatusCode::BAD_REQUEST,
                Failure::Upstream | Failure::Cancelled => StatusCode::BAD_GATEWAY,
            })
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("text/html; charset=utf-8")
            .body(pages::message_page_with_link(
                title,
                message,
                respond::back_link(&redirect, &mut href),
            ))
        }
        Err(CallbackError::Busy {
            redirect,
            retry_after,
        }) => super::upstream_busy(&redirect, retry_after),
        Err(CallbackError::Internal(e)) => {
            tracing::error!(cause = ?e.internal, "callback failed");
            super::failure_page(
                e.is_temporary(),
                "The sign-in service could not complete your sign-in. Please go back to the app and try again.",
            )
        }
    };
    // An unmatched callback took nothing: the browser's cookie may name another tab's login.
    if taken {
        if let Err(e) = response.add_cookie(&cookies::binding_removal(&state)) {
            tracing::error!(error = %e, "cannot clear the binding cookie");
        }
    }
    response
}

fn unmatched() -> HttpResponse {
    page(
        StatusCode::BAD_REQUEST,
        "This sign-in cannot be completed",
        "The sign-in link has expired, was already used, or was opened in another browser. Go back to the app and sign in again.",
    )
}
