//! `GET`/`POST /authorize` (OIDC Core §3.1.2.1) in HTTP: read the parameters and the session
//! cookie, run `flows::authorize::run`, render its outcome.

use super::respond::{self, render_finish, server_error};
use super::{cookies, form, page};
use crate::flows::authorize::{self, AuthorizeOutcome};
use crate::flows::upstream::SignInFor;
use crate::state::AppState;
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};

/// Mounts the authorization endpoint.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/authorize")
            .route(web::get().to(authorize))
            .route(web::post().to(authorize)),
    );
}

#[tracing::instrument(skip_all, fields(client_id))]
async fn authorize(req: HttpRequest, body: Bytes, state: web::Data<AppState>) -> HttpResponse {
    let params = if req.method() == Method::POST {
        if !form::is_form(&req) {
            return page(
                StatusCode::BAD_REQUEST,
                "Invalid sign-in request",
                "The app sent the sign-in request in a form this service does not accept.",
            );
        }
        form::pairs(&body)
    } else {
        form::pairs(req.query_string().as_bytes())
    };
    let now = state.clock.now();
    let cookie = cookies::session_value(&req, &state);
    let ctx = super::flow_context(&state, &req);
    match authorize::run(&ctx, &params, cookie.as_deref(), now).await {
        Ok(AuthorizeOutcome::Page { title, message }) => {
            page(StatusCode::BAD_REQUEST, title, message)
        }
        Ok(AuthorizeOutcome::Redirect(response)) => respond::to_app(&req, &response),
        Ok(AuthorizeOutcome::SignInUpstream(request)) => {
            respond::to_discord(&req, &state, &SignInFor::App(request), now).await
        }
        Ok(AuthorizeOutcome::Finished(next)) => render_finish(&req, &state, next),
        Err(e) => server_error(e),
    }
}
