//! `GET`/`POST /userinfo` (OIDC Core §5.3): the bearer token from the header or the form body.

use super::form;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::flows;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};

/// Mounts the UserInfo endpoint.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/userinfo")
            .route(web::get().to(userinfo))
            .route(web::post().to(userinfo)),
    );
}

#[tracing::instrument(skip_all)]
async fn userinfo(
    req: HttpRequest,
    body: Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let token = bearer_token(&req, &body)?;
    let claims = flows::userinfo::claims_for(&state.context(), &token, state.clock.now()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(claims))
}

/// RFC 6750 §2.1 (header, scheme case-insensitive) or §2.2 (form body); exactly one.
/// §2.3 (the URI query) is optional and declined: a token in a URL ends up in browser history,
/// proxy logs and `Referer` headers, so it is refused outright rather than ignored.
fn bearer_token(req: &HttpRequest, body: &Bytes) -> Result<String, OAuthError> {
    if form::pairs(req.query_string().as_bytes())
        .iter()
        .any(|(name, _)| name == "access_token")
    {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "access tokens are not accepted in the URL; send them in the Authorization header",
        ));
    }
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let from_body = if req.method() == actix_web::http::Method::POST && form::is_form(req) {
        form::pairs(body)
            .into_iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "send the access token in one place only",
        )),
        (Some(t), None) | (None, Some(t)) if !t.is_empty() => Ok(t),
        _ => Err(OAuthError::no_token()),
    }
}
