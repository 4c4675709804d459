//! `POST /consent`: the person's answer on the consent page.

use super::respond::{server_error, to_app};
use super::{form, page};
use crate::flows::{finish, session};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, post, web};

/// Mounts the consent answer.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(consent);
}

#[post("/consent")]
#[tracing::instrument(skip_all)]
async fn consent(req: HttpRequest, body: Bytes, state: web::Data<AppState>) -> HttpResponse {
    let params = form::pairs(&body);
    let get = |name: &str| form::value(&params, name);
    let now = state.clock.now();
    let cookie = super::cookies::session_value(&req, &state);
    let session = match session::current(&state.context(), cookie.as_deref(), now).await {
        Ok(Some(s)) => s,
        Ok(None) => return expired(),
        Err(e) => return server_error(e.into()),
    };
    let approved = get("answer") == Some("allow");
    // The ticket is signed and bound to this session, which also makes the form CSRF-safe.
    match finish::answer_consent(
        &super::flow_context(&state, &req),
        get("ticket").unwrap_or_default(),
        &session,
        approved,
        now,
    )
    .await
    {
        Ok(Some(response)) => to_app(&req, &response),
        Ok(None) => expired(),
        Err(e) => server_error(e),
    }
}

fn expired() -> HttpResponse {
    page(
        StatusCode::BAD_REQUEST,
        "This page has expired",
        "The consent page is no longer valid. Go back to the app and sign in again.",
    )
}
