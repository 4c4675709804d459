//! The label sets of guildgate's metrics and the closed value sets behind them (how a sign-in
//! ended, how a delivery ended, an HTTP status): no label value comes from a request.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use std::fmt::Write;

/// An HTTP status as a label: the number, or `none` when no answer came (timeouts, refused
/// connections).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Status(pub Option<u16>);

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        match self.0 {
            Some(code) => write!(encoder, "{code}"),
            None => encoder.write_str("none"),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct HttpLabels {
    pub(super) route: &'static str,
    pub(super) status: Status,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RouteLabel {
    pub(super) route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SignInLabels {
    pub(super) outcome: &'static str,
    pub(super) rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct GrantLabels {
    pub(super) grant_type: &'static str,
    pub(super) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabel {
    pub(super) kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabel {
    pub(super) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StateLabel {
    pub(super) state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DiscordLabels {
    pub(super) route: &'static str,
    pub(super) status: Status,
}

/// How a sign-in ended (`guildgate_signins_total{outcome}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignIn {
    /// A code was issued to the app.
    Ok,
    /// The access rules refused the person; the unmet rule (`policy::Denial::as_str`).
    Denied(&'static str),
    /// Discord failed, refused, or could not be asked.
    UpstreamError,
    /// The person declined, at Discord or on the consent page.
    Cancelled,
    /// The callback matched no pending login or came from the wrong issuer.
    Invalid,
}

/// How one back-channel logout attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The app acknowledged it.
    Delivered,
    /// It failed and will be retried.
    Retry,
    /// It failed for the last time and was given up.
    Abandoned,
}
