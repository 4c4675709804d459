//! `GET`/`POST /authorize` (OIDC Core §3.1.2.1): validate, then answer from the SSO session or
//! send the person to Discord.

use super::{cookies, form, page};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::flows::authorize::{self, AuthorizeError, Decision};
use crate::flows::finish::{self, Finish};
use crate::flows::{response, session};
use crate::state::AppState;
use actix_web::http::{Method, StatusCode, header};
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
    let issuer = state.config.issuer.as_str();
    let (request, client) = match authorize::validate(&params, &state.clients, &state.keys, issuer)
    {
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
    let current = match session::current(&state, cookie.as_deref(), now).await {
        Ok(s) => s,
        Err(e) => return server_error(e.into()),
    };
    match authorize::decide(&request, current, now, |uid| state.subject(&client, uid)) {
        Ok(Decision::UseSession(s)) => {
            if let Err(e) = state.store.touch_session(&s.id, now).await {
                tracing::warn!(error = %e, "could not record session use");
            }
            match finish::finish(&state, &client, &request, &s, now).await {
                Ok(Finish::SignInAgain) => {
                    super::callback::to_discord(&req, &state, &request, now).await
                }
                Ok(next) => render_finish(&req, &state, next),
                Err(e) => server_error(e),
            }
        }
        Ok(Decision::SignInUpstream) => {
            super::callback::to_discord(&req, &state, &request, now).await
        }
        Err(code) => {
            let error = OAuthError::new(
                code,
                match code {
                    OAuthErrorCode::LoginRequired => "the person is not signed in",
                    _ => "interaction is required",
                },
            );
            redirect(&req, &response::error_redirect(&state, &request, &error))
        }
    }
}

/// A redirect to the app, or the consent page.
pub(super) fn render_finish(req: &HttpRequest, state: &AppState, next: Finish) -> HttpResponse {
    match next {
        Finish::Redirect(location) => redirect(req, &location),
        Finish::Denied {
            redirect,
            explanation,
        } => HttpResponse::Forbidden()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("text/html; charset=utf-8")
            .body(crate::pages::message_page_with_link(
                "You cannot use this app",
                explanation,
                crate::pages::Link {
                    href: &redirect,
                    label: "Return to the app",
                },
            )),
        Finish::Unavailable { redirect } => HttpResponse::ServiceUnavailable()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::RETRY_AFTER, "30"))
            .content_type("text/html; charset=utf-8")
            .body(crate::pages::message_page_with_link(
                "Discord cannot be reached",
                "Your access to this app has to be confirmed with Discord, and Discord is not answering right now. Please try again in a minute.",
                crate::pages::Link {
                    href: &redirect,
                    label: "Return to the app",
                },
            )),
        // Only the single sign-on path asks for this, and it starts the Discord sign-in itself.
        Finish::SignInAgain => page(
            StatusCode::BAD_REQUEST,
            "Please sign in again",
            "Your Discord sign-in could not be confirmed. Go back to the app and sign in again.",
        ),
        Finish::AskConsent {
            client_name,
            scopes,
            ticket,
        } => {
            let claims: Vec<&str> = scopes.iter().map(describe_scope).collect();
            let html = crate::pages::render(
                "consent.html",
                minijinja::context! {
                    title => format!("Allow {client_name}?"),
                    app => client_name,
                    claims => claims,
                    ticket => ticket,
                    action => state.config.issuer.endpoint("/consent"),
                },
            );
            HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header(("X-Frame-Options", "DENY"))
                .content_type("text/html; charset=utf-8")
                .body(html)
        }
    }
}

/// What a scope releases, in words for the consent page.
fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "openid" => "your Discord user id",
        "profile" => "your Discord username, display name, avatar and language",
        "email" => "your email address and whether Discord has verified it",
        "groups" => "the server roles the administrator maps to groups",
        "offline_access" => "access while you are away (it stays signed in)",
        _ => "other information",
    }
}

/// 302 for GET; 303 after POST so the browser follows with GET.
pub(super) fn redirect(req: &HttpRequest, location: &str) -> HttpResponse {
    let status = if req.method() == Method::POST {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

pub(super) fn server_error(e: OAuthError) -> HttpResponse {
    tracing::error!(cause = ?e.internal, "authorization failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The sign-in service could not complete your request. Please try again in a moment.",
    )
}
