//! The device authorization grant in HTTP (RFC 8628): `POST /device_authorization` for the
//! device, and `/device` for the person (the code form, then the confirmation).

use super::client_auth::{authenticated_form, source_address};
use super::device_pages::{self, entry_form};
use super::{cookies, form, page, respond};
use crate::error::OAuthError;
use crate::flows::device_page::{self, Answered, DevicePage};
use crate::flows::{device, session};
use crate::state::AppState;
use crate::store::SessionDevice;
use actix_web::http::{StatusCode, header};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};

/// Mounts the device authorization endpoint and the device page.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/device_authorization").route(web::post().to(device_authorization)))
        .service(
            web::resource("/device")
                .route(web::get().to(show))
                .route(web::post().to(enter)),
        )
        .service(web::resource("/device/answer").route(web::post().to(answer)));
}

#[tracing::instrument(skip_all, fields(client_id))]
async fn device_authorization(
    req: HttpRequest,
    body: Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let (params, client) = authenticated_form(&req, &body, &state, "/device_authorization").await?;
    let ctx = super::flow_context(&state, &req);
    // What the person will see of the device that asks (RFC 8628 §5.4).
    let device = SessionDevice::new(
        req.headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        Some(source_address(&req).to_string()),
    );
    let started = device::start(
        &ctx,
        &client,
        params.get("scope"),
        device,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(started))
}

/// The code form, filled in from `?user_code=` (the `verification_uri_complete` link): the
/// person still presses Continue, so a link alone never approves anything.
async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let query = form::pairs(req.query_string().as_bytes());
    let prefilled = form::value(&query, "user_code").unwrap_or_default();
    entry_form(&state, prefilled, None, StatusCode::OK)
}

#[tracing::instrument(skip_all)]
async fn enter(req: HttpRequest, body: Bytes, state: web::Data<AppState>) -> HttpResponse {
    let source = source_address(&req);
    let now = state.clock.now();
    let limits = state.config().limits;
    if let Some(wait) = state.limiters.user_code_wait(source, &limits, now) {
        tracing::warn!(%source, "too many wrong user codes from one source");
        return device_pages::too_many(wait);
    }
    let fields = form::pairs(&body);
    let typed = form::value(&fields, "user_code").unwrap_or_default();
    let ctx = super::flow_context(&state, &req);
    let cookie = cookies::session_value(&req, &state);
    let current = match session::current(&ctx, cookie.as_deref(), now).await {
        Ok(current) => current,
        Err(e) => return respond::server_error(e.into()),
    };
    match device_page::enter(&ctx, typed, current.as_ref(), now).await {
        Ok(DevicePage::WrongCode) => {
            state.limiters.user_code_failed(source, &limits, now);
            entry_form(
                &state,
                typed,
                Some("That code is not valid: check it, or start again on your device."),
                StatusCode::BAD_REQUEST,
            )
        }
        Ok(DevicePage::SignIn(sign_in)) => respond::to_discord(&req, &state, &sign_in, now).await,
        Ok(next) => device_pages::render(&state, next),
        Err(e) => respond::server_error(e),
    }
}

#[tracing::instrument(skip_all)]
async fn answer(req: HttpRequest, body: Bytes, state: web::Data<AppState>) -> HttpResponse {
    let params = form::pairs(&body);
    let get = |name: &str| form::value(&params, name);
    let now = state.clock.now();
    let ctx = super::flow_context(&state, &req);
    let cookie = cookies::session_value(&req, &state);
    let session = match session::current(&ctx, cookie.as_deref(), now).await {
        Ok(Some(s)) => s,
        Ok(None) => return device_pages::expired(),
        Err(e) => return respond::server_error(e.into()),
    };
    // The ticket is signed and bound to this session, which also makes the form CSRF-safe.
    let approved = get("answer") == Some("allow");
    match device_page::answer(
        &ctx,
        get("ticket").unwrap_or_default(),
        &session,
        approved,
        now,
    )
    .await
    {
        Ok(Answered::Approved { app }) => page_owned(
            StatusCode::OK,
            "Your device is signed in",
            &format!(
                "{app} is signing you in on your device. You can close this page and go back to it."
            ),
        ),
        Ok(Answered::Declined) => page(
            StatusCode::OK,
            "Sign-in declined",
            "The device was not signed in. You can close this page.",
        ),
        Ok(Answered::Expired) => device_pages::expired(),
        Err(e) => respond::server_error(e),
    }
}

fn page_owned(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(crate::pages::message_page(title, message))
}
