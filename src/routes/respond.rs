//! How the browser-facing endpoints answer: the redirect to Discord with its binding cookie,
//! the pages and redirects an authorization ends in, and the generic error page. Shared by
//! `/authorize`, `/callback/discord` and `/consent`; not an endpoint itself.

use super::{client_auth, cookies, page};
use crate::error::OAuthError;
use crate::flows::finish::Finish;
use crate::flows::refusal::Refusal;
use crate::flows::response::AuthorizationResponse;
use crate::flows::upstream::{self, SignInFor, StartingBrowser};
use crate::pages;
use crate::state::AppState;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use time::OffsetDateTime;

/// Starts a Discord login for `request` (an app's, or the account page's): the redirect to Discord, setting a freshly generated
/// binding cookie; or a 429 page when too many logins are pending from this address.
pub(super) async fn to_discord(
    req: &HttpRequest,
    state: &AppState,
    request: &SignInFor,
    now: OffsetDateTime,
) -> HttpResponse {
    let previous = cookies::binding_value(req, state);
    let browser = StartingBrowser {
        previous_binding: previous.as_deref(),
        source: client_auth::source_address(req),
    };
    match upstream::begin(&state.context(), request, browser, now).await {
        Ok(start) => {
            let mut response = redirect(req, start.redirect_to.as_str());
            // Without its binding cookie the login could never be completed: stop here.
            match response.add_cookie(&cookies::binding(state, start.binding.expose())) {
                Ok(()) => response,
                Err(e) => server_error(crate::error::OAuthError::internal(anyhow::anyhow!(
                    "cannot set the binding cookie: {e}"
                ))),
            }
        }
        Err(e) => match e.retry_after {
            Some(wait) => HttpResponse::TooManyRequests()
                .insert_header((header::RETRY_AFTER, wait.as_secs().max(1).to_string()))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .content_type("text/html; charset=utf-8")
                .body(pages::message_page(
                    "Too many sign-ins in progress",
                    "Too many sign-ins were started from your network and not finished. Please wait a minute, then go back to the app and try again.",
                )),
            None => server_error(e),
        },
    }
}

/// An authorization response to the app: a redirect with the parameters in the query, or
/// (`response_mode=form_post`) a page whose form the browser posts to the redirect URI.
pub(super) fn to_app(req: &HttpRequest, response: &AuthorizationResponse) -> HttpResponse {
    if !response.is_form_post() {
        return redirect(req, &response.location());
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, FORM_POST_POLICY.as_str()))
        .content_type("text/html; charset=utf-8")
        .body(form_post_page(response))
}

/// The one script of the form_post page.
const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

/// The form_post page's policy: nothing but its one script (by hash), no styles, no framing.
/// `form-action` is left open: the redirect URI is the app's, registered and verified.
static FORM_POST_POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(FORM_POST_SCRIPT.as_bytes()));
    format!(
        "default-src 'none'; script-src 'sha256-{hash}'; base-uri 'none'; frame-ancestors 'none'"
    )
});

/// OAuth 2.0 Form Post Response Mode §2: an HTML form of the response's parameters, posted by
/// a script as soon as it loads (with a button for browsers without scripts). Not a template:
/// its script is pinned by the policy's hash.
fn form_post_page(response: &AuthorizationResponse) -> String {
    let mut fields = String::new();
    for (name, value) in &response.params {
        fields.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            pages::escape_html(name),
            pages::escape_html(value)
        ));
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"><title>Returning to the app</title></head><body><form method=\"post\" action=\"{}\">{fields}<noscript><p>Press the button to return to the app.</p><button type=\"submit\">Continue</button></noscript></form><script>{FORM_POST_SCRIPT}</script></body></html>",
        pages::escape_html(&response.redirect_uri)
    )
}

/// A link (or, for form_post, a button posting the fields) back to the app with `response`.
pub(super) fn back_link<'a>(
    response: &'a AuthorizationResponse,
    href: &'a mut String,
) -> pages::Link<'a> {
    if response.is_form_post() {
        pages::Link {
            href: &response.redirect_uri,
            label: "Return to the app",
            fields: &response.params,
        }
    } else {
        *href = response.location();
        pages::Link::to(href, "Return to the app")
    }
}

/// A redirect to the app, or the consent page.
pub(super) fn render_finish(req: &HttpRequest, state: &AppState, next: Finish) -> HttpResponse {
    match next {
        Finish::Redirect(response) => to_app(req, &response),
        Finish::Denied(refusal) => denied(state, &refusal),
        Finish::Unavailable { redirect } => {
            let mut href = String::new();
            HttpResponse::ServiceUnavailable()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::RETRY_AFTER, "30"))
                .content_type("text/html; charset=utf-8")
                .body(crate::pages::message_page_with_link(
                    "Discord cannot be reached",
                    "Your access to this app has to be confirmed with Discord, and Discord is not answering right now. Please try again in a minute.",
                    back_link(&redirect, &mut href),
                ))
        }
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
            mapped_claims,
        } => {
            let mut claims: Vec<String> = scopes
                .iter()
                .map(|s| describe_scope(s).to_owned())
                .collect();
            if !mapped_claims.is_empty() {
                claims.push(format!(
                    "what the administrator derives for this app from your servers, roles and linked accounts ({})",
                    mapped_claims.join(", ")
                ));
            }
            let html = crate::pages::render(
                "consent.html",
                minijinja::context! {
                    title => format!("Allow {client_name}?"),
                    app => client_name,
                    claims => claims,
                    ticket => ticket,
                    action => state.config().issuer.endpoint("/consent"),
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

/// The denial page (403): names the app and the refused Discord account, offers another
/// account or the way back; never lists guilds.
pub(super) fn denied(state: &AppState, refusal: &Refusal) -> HttpResponse {
    let (back, back_fields) = if refusal.back.is_form_post() {
        (
            refusal.back.redirect_uri.clone(),
            refusal.back.params.clone(),
        )
    } else {
        (refusal.back.location(), Vec::new())
    };
    let html = pages::render(
        "denied.html",
        minijinja::context! {
            title => match &refusal.app {
                Some(app) => format!("You cannot use {app}"),
                None => "You cannot sign in here".to_owned(),
            },
            app => refusal.app,
            signed_in_as => refusal.signed_in_as,
            explanation => refusal.explanation,
            back => back,
            back_fields => back_fields,
            switch_account => refusal.switch_account,
            account => state.config().issuer.endpoint("/account"),
        },
    );
    HttpResponse::Forbidden()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(html)
}

/// What a scope releases, in words for the consent page.
pub(super) fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "openid" => "your Discord user id",
        "profile" => {
            "your Discord username, display name (or server nickname), avatar and language"
        }
        "email" => "your email address and whether Discord has verified it",
        "groups" => "the server roles the administrator maps to groups",
        "connections" => "the verified accounts linked to your Discord profile (GitHub, Steam, …)",
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
    super::failure_page(
        e.is_temporary(),
        "The sign-in service could not complete your request. Please try again in a moment.",
    )
}
