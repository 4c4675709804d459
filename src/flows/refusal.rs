//! A refusal by the access rules, as the person sees it: which app, which Discord account, why
//! (never which guilds), back to the app, or a new sign-in with another Discord account.

use super::Context;
use super::authorize::AuthorizationRequest;
use super::response::{AuthorizationResponse, error_redirect};
use crate::domain::PkceChallenge;
use crate::error::{OAuthError, OAuthErrorCode};

/// What the denial page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The app's display name; `None` for the account page.
    pub app: Option<String>,
    /// The Discord username that was refused ("signed in as carol").
    pub signed_in_as: String,
    /// Which requirement was not met, in words for the person; never names a guild.
    pub explanation: &'static str,
    /// Back to the app with `error=access_denied` (or to the account or device page).
    pub back: AuthorizationResponse,
    /// The same sign-in again, asking Discord to show its account screen.
    pub switch_account: String,
}

impl Refusal {
    /// A refusal for an app's authorization request.
    pub fn for_app(
        ctx: &Context<'_>,
        app: &str,
        request: &AuthorizationRequest,
        username: &str,
        explanation: &'static str,
    ) -> Self {
        let error = OAuthError::new(
            OAuthErrorCode::AccessDenied,
            "the access rules do not admit this person",
        );
        Self {
            app: Some(app.to_owned()),
            signed_in_as: username.to_owned(),
            explanation,
            back: error_redirect(ctx, request, &error),
            switch_account: switch_account_url(ctx, request),
        }
    }

    /// A refusal of a sign-in to the account page.
    pub fn for_account(ctx: &Context<'_>, username: &str, explanation: &'static str) -> Self {
        Self {
            app: None,
            signed_in_as: username.to_owned(),
            explanation,
            back: AuthorizationResponse::to_page(ctx.config.issuer.endpoint("/account")),
            switch_account: ctx.config.issuer.endpoint("/account/sign-in?another=1"),
        }
    }
}

/// Counts and audits a refusal by an app's own access rules (`AccessDenied` at app level, and
/// `guildgate_signins_total{outcome="denied"}` with the unmet rule).
pub fn record_app_denial(
    ctx: &Context<'_>,
    client_id: &str,
    user_id: &str,
    denial: crate::policy::Denial,
) {
    ctx.audit(&crate::audit::Event::AccessDenied {
        client_id: Some(client_id),
        user_id,
        rule: denial.as_str(),
        level: crate::audit::RuleLevel::App,
    });
    ctx.metrics
        .sign_in(crate::metrics::SignIn::Denied(denial.as_str()));
}

/// The app's request again with `prompt=login`, which sends the browser to Discord's account
/// screen (`prompt=consent` there) instead of reusing the refused account. Every parameter
/// comes from the validated request, so the link can only lead back to a registered URI.
fn switch_account_url(ctx: &Context<'_>, request: &AuthorizationRequest) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", request.client_id.as_str())
        .append_pair("redirect_uri", &request.redirect_uri)
        .append_pair("scope", &request.scope.to_string());
    let prompt = if request.prompt.consent {
        "login consent"
    } else {
        "login"
    };
    query.append_pair("prompt", prompt);
    for (name, value) in [
        ("state", request.state.as_deref()),
        ("nonce", request.nonce.as_deref()),
        (
            "code_challenge",
            request.code_challenge.as_ref().map(PkceChallenge::as_str),
        ),
    ] {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    if request.code_challenge.is_some() {
        query.append_pair("code_challenge_method", "S256");
    }
    ctx.config
        .issuer
        .endpoint(&format!("/authorize?{}", query.finish()))
}
