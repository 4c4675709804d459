//! `GET`/`POST /authorize` (OIDC Core §3.1.2.1): validate, then answer from the SSO session or
//! send the person to Discord.

use super::respond::{self, redirect, render_finish, server_error};
use super::{cookies, form, page};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::flows::authorize::{self, AuthorizeError, Decision};
use crate::flows::finish::{self, Finish};
use crate::flows::upstream::SignInFor;
use crate::flows::{response, session};
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
    let config = state.config();
    let issuer = config.issuer.as_str();
    let (request, client) =
        match authorize::validate(&params, &state.clients(), &state.keys, issuer) {
            Ok(valid) => valid,
            Err(AuthorizeError::Page { title, message }) => {
                tracing::info!(
                    title,
                    "authorization request refused before the client was verified"
                );
                return page(StatusCode::BAD_REQUEST, title, message);
            }
            Err(AuthorizeError::Redirect {
                redirect_uri,
                state: st,
                error,
            }) => {
                tracing::info!(error = %error, "authorization request refused");
                return redirect(
                    &req,
                    &response::redirect_error(&redirect_uri, st.as_deref(), &error, issuer),
                );
            }
        };
    tracing::Span::current().record("client_id", request.client_id.as_str());
    let now = state.clock.now();
    let cookie = cookies::session_value(&req, &state);
    let current = match session::current(&state.context(), cookie.as_deref(), now).await {
        Ok(s) => s,
        Err(e) => return server_error(e.into()),
    };
    match authorize::decide(&request, current, now, |uid| state.subject(&client, uid)) {
        Ok(Decision::UseSession(s)) => {
            if let Err(e) = state.store.touch_session(&s.id, now).await {
                tracing::warn!(error = %e, "could not record session use");
            }
            let ctx = super::flow_context(&state, &req);
            match finish::finish(&ctx, &client, &request, &s, now).await {
                Ok(Finish::SignInAgain) => {
                    respond::to_discord(&req, &state, &SignInFor::App(request), now).await
                }
                Ok(next) => render_finish(&req, &state, next),
                Err(e) => server_error(e),
            }
        }
        Ok(Decision::SignInUpstream) => {
            respond::to_discord(&req, &state, &SignInFor::App(request), now).await
        }
        Err(code) => {
            let error = OAuthError::new(
                code,
                match code {
                    OAuthErrorCode::LoginRequired => "the person is not signed in",
                    _ => "interaction is required",
                },
            );
            redirect(
                &req,
                &response::error_redirect(&state.context(), &request, &error),
            )
        }
    }
}
