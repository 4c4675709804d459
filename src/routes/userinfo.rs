//! `GET`/`POST /userinfo` (OIDC Core §5.3): the access token from the header (`Bearer`, or
//! `DPoP` with its proof, RFC 9449 §7) or the form body.

use super::form;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::flows;
use crate::flows::userinfo::Presented;
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
    let (token, dpop) = access_token(&req, &body)?;
    let proofs = super::dpop_headers(&req);
    let presented = if dpop {
        Presented::Dpop {
            proofs: &proofs,
            method: req.method().as_str(),
        }
    } else {
        Presented::Bearer
    };
    let ctx = state.context();
    let now = state.clock.now();
    let claims = flows::userinfo::claims_for(&ctx, &token, presented, now).await?;
    let mut answer = HttpResponse::Ok();
    answer.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(nonce) = flows::dpop::fresh_nonce(&ctx, now).filter(|_| dpop) {
        answer.insert_header(("DPoP-Nonce", nonce));
    }
    Ok(answer.json(claims))
}

/// RFC 6750 §2.1 (header, scheme case-insensitive; `DPoP` too, RFC 9449 §7.1) or §2.2 (form
/// body); exactly one. §2.3 (the URI query) is optional and declined: a token in a URL ends up
/// in browser history, proxy logs and `Referer` headers, so it is refused outright rather than
/// ignored. The flag says the DPoP scheme was used.
fn access_token(req: &HttpRequest, body: &Bytes) -> Result<(String, bool), OAuthError> {
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
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop")
        })
        .map(|(scheme, token)| (token.trim().to_owned(), scheme.eq_ignore_ascii_case("dpop")));
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
        (Some((t, dpop)), None) if !t.is_empty() => Ok((t, dpop)),
        (None, Some(t)) if !t.is_empty() => Ok((t, false)),
        _ => Err(OAuthError::no_token()),
    }
}
