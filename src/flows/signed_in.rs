//! After the Discord callback: write the sign-in and finish what it was for (the app's request,
//! the account page or a device sign-in). The callback's checks and Discord's answers are
//! `upstream.rs`; this writes nothing until the app's decision is known, so a sign-in straight
//! into an app is written with its code in one trip.

use super::Context;
use super::finish::{self, Decision, Finish};
use super::membership::Membership;
use super::response::success_redirect;
use super::upstream::SignInFor;
use super::{code, device_page};
use crate::audit::Event;
use crate::domain::OpaqueToken;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::store::{
    MembershipSnapshot, NewSignIn, SessionRecord, StoredUpstreamTokens, UserRecord,
};
use time::OffsetDateTime;

/// A login Discord has answered and the global rules admit, not yet written: the session to
/// set and where the browser goes next. [`after_sign_in`] writes it, with the app's code when
/// the app gets one straight away, in one trip.
pub struct Completed {
    /// What to finish now that a session exists: the app's request (consent, code) or the
    /// account page.
    pub request: SignInFor,
    /// The new SSO session.
    pub session: SessionRecord,
    /// Its cookie value.
    pub session_secret: OpaqueToken,
    /// The person, as Discord described them.
    pub user: UserRecord,
    /// Their membership, just fetched.
    pub(super) membership: Membership,
    /// The same, as stored.
    pub(super) snapshot: MembershipSnapshot,
    /// Their Discord tokens, sealed, when kept.
    pub(super) kept: Option<StoredUpstreamTokens>,
}

impl Completed {
    /// The writes of this sign-in.
    fn writes(&self) -> NewSignIn<'_> {
        NewSignIn {
            user: &self.user,
            membership: &self.snapshot,
            tokens: self.kept.as_ref(),
            session: &self.session,
        }
    }

    /// Writes the sign-in on its own (no code goes with it).
    async fn save(&self, ctx: &Context<'_>) -> Result<(), OAuthError> {
        ctx.store.save_sign_in(&self.writes(), None).await?;
        self.saved(ctx);
        Ok(())
    }

    /// Audits the sign-in once it is written.
    fn saved(&self, ctx: &Context<'_>) {
        ctx.audit(&Event::SignIn {
            client_id: self.request.client_id(),
            user_id: self.user.id.as_str(),
        });
    }
}

/// Where a completed Discord sign-in leads.
#[derive(Debug)]
pub enum AfterSignIn {
    /// The app's request, finished from the new session: a code, consent, a denial, ….
    App(Finish),
    /// The account page, at this URL.
    Account(String),
    /// The device page: the confirmation of the device sign-in, or why not.
    Device(device_page::DevicePage),
}

/// Writes the sign-in and finishes what it was for. An app that gets its code straight away
/// has it written with the sign-in (one trip); anything else writes the sign-in first.
pub async fn after_sign_in(
    ctx: &Context<'_>,
    done: &Completed,
    now: OffsetDateTime,
) -> Result<AfterSignIn, OAuthError> {
    let request = match &done.request {
        SignInFor::App(request) => request,
        SignInFor::Account(_) => {
            done.save(ctx).await?;
            return Ok(AfterSignIn::Account(ctx.config.issuer.endpoint("/account")));
        }
        SignInFor::Device(device) => {
            done.save(ctx).await?;
            return Ok(AfterSignIn::Device(
                device_page::after_sign_in(ctx, device, &done.session, &done.user, now).await?,
            ));
        }
    };
    // Removed by a reload while the person was at Discord: an error page, and (like every
    // error here) no session cookie, so nothing is written for it.
    let Some(client) = ctx.clients.get(request.client_id.as_str()) else {
        return Err(OAuthError::new(
            OAuthErrorCode::ServerError,
            "the client is no longer registered",
        ));
    };
    let decision = finish::decide(
        ctx,
        &client,
        request,
        &done.session,
        &done.user,
        Some(&done.membership),
        now,
    )
    .await?;
    let next = match decision {
        Decision::Code(granted) => {
            let code = code::issue_at_sign_in(ctx, &granted, &done.writes(), now).await?;
            done.saved(ctx);
            Finish::Redirect(success_redirect(ctx, &granted, &code))
        }
        Decision::Answer(next) => {
            done.save(ctx).await?;
            next
        }
    };
    Ok(AfterSignIn::App(next))
}
