//! Parse-don't-validate newtypes: request and config strings become these once, at the edge.

mod avatar;
mod client_id;
mod discord_id;
mod issuer;
mod jkt;
mod pkce;
mod record_ids;
mod redirect_uri;
mod scopes;
mod token;
mod user_code;

pub use avatar::{avatar_url, guild_avatar_url};
pub use client_id::ClientId;
pub use discord_id::DiscordId;
pub use issuer::{Issuer, is_loopback};
pub use jkt::Jkt;
pub use pkce::{PkceChallenge, PkceVerifier, constant_time_eq};
pub use record_ids::{GrantId, SessionId};
pub use redirect_uri::RedirectUri;
pub use scopes::{SUPPORTED_SCOPES, Scopes};
pub use token::{OpaqueToken, TokenHash};
pub use user_code::UserCode;
