//! What the protocol flows work with, and nothing more: the validated configuration, the store,
//! the signing keys, the registered clients, the Discord client, the clock and the per-person
//! re-check locks, the sealer for kept Discord tokens, the metrics, and who is asking (request
//! id and source address, for the audit log). No HTTP, no raw settings. Routes and jobs borrow
//! one from the app state ([`crate::state::AppState::context`]; routes add the request with
//! `routes::flow_context`); tests can build one from parts.

use crate::audit::RequestInfo;
use crate::clients::Clients;
use crate::config::{ValidClient, ValidConfig};
use crate::discord::DiscordClient;
use crate::domain::DiscordId;
use crate::keyed_lock::KeyedLocks;
use crate::keys::KeySet;
use crate::metrics::Metrics;
use crate::sealed::Keyring;
use crate::state::Clock;
use crate::store::Store;
use crate::tokens::VerifiedTokens;
use std::sync::Arc;
use tokio::sync::Notify;

/// The flows' view of the running service.
#[derive(Clone)]
pub struct Context<'a> {
    /// The typed, validated configuration (one snapshot: a reload does not change it under a
    /// running flow).
    pub config: Arc<ValidConfig>,
    /// Persistent ctx.
    pub store: &'a dyn Store,
    /// Signing keys.
    pub keys: &'a KeySet,
    /// Registered clients (of the same snapshot).
    pub clients: Arc<Clients>,
    /// The upstream Discord client.
    pub discord: &'a DiscordClient,
    /// Time source (flows also take `now`, read once per request).
    pub clock: &'a Clock,
    /// Wakes the back-channel logout deliverer when work is queued.
    pub logout_wakeup: &'a Notify,
    /// One membership re-check per person at a time in this process.
    pub rechecks: &'a KeyedLocks,
    /// Access tokens whose signature was already checked.
    pub verified: &'a VerifiedTokens,
    /// Seals and opens kept Discord tokens; `None` without `[secrets]` keys.
    pub sealer: Option<&'a Keyring>,
    /// Counters of what the flows decide.
    pub metrics: &'a Metrics,
    /// The request being served (empty for jobs and the command line): audit lines carry it.
    pub request: RequestInfo,
}

impl Context<'_> {
    /// This context, serving the request described by `request`.
    pub fn with_request(self, request: RequestInfo) -> Self {
        Self { request, ..self }
    }

    /// Writes an audit line for `event`, with this request's id and source address.
    pub fn audit(&self, event: &crate::audit::Event<'_>) {
        crate::audit::emit(&self.request, event);
    }

    /// The `sub` a client sees for a person (pairwise when the client asks for it).
    pub fn subject(&self, client: &ValidClient, user_id: &DiscordId) -> String {
        crate::claims::subject(
            self.config.pairwise_key.as_ref(),
            client.id.as_str(),
            client.pairwise_subject,
            user_id.as_str(),
        )
    }
}
