//! The Discord application's client secret and the bot token, replaceable while guildgate runs
//! (SIGHUP): a new one is first tried with Discord and only then used; until then, and when
//! Discord refuses it, the old one stays in use.
//!
//! What "works" means: for the client secret, Discord's token endpoint accepts the client. A
//! made-up authorization code is sent with the new secret: Discord authenticates the client
//! before it looks at the code, so `invalid_grant` means the secret is accepted (and nothing is
//! issued), `invalid_client` (401) that it is refused. For the bot token, `GET /users/@me` with
//! it answers the bot user.

use super::answers::{oauth_error, parse, rest_error};
use super::client::form_encode;
use super::{DiscordClient, DiscordError, DiscordRoute, api};
use base64::Engine as _;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

/// The secrets in use, swapped as a whole.
pub(super) struct Credentials {
    /// `Basic base64(urlencode(id):urlencode(secret))`, marked sensitive.
    pub basic_auth: HeaderValue,
    /// The bot token and its `Bot <token>` header, when a bot is configured.
    pub bot: Option<(SecretString, HeaderValue)>,
}

impl Credentials {
    /// The headers for `client_id` with `secret`, and the bot token if any.
    pub fn new(
        client_id: &str,
        secret: &SecretString,
        bot_token: Option<&SecretString>,
    ) -> Result<Self, DiscordError> {
        Ok(Self {
            basic_auth: basic_auth(client_id, secret)?,
            bot: bot_token
                .map(|t| Ok::<_, DiscordError>((t.clone(), bot_auth(t)?)))
                .transpose()?,
        })
    }
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
fn basic_auth(client_id: &str, secret: &SecretString) -> Result<HeaderValue, DiscordError> {
    let credentials = format!(
        "{}:{}",
        form_encode(client_id),
        form_encode(secret.expose_secret())
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|_| DiscordError::Config("client credentials are not header-safe".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn bot_auth(token: &SecretString) -> Result<HeaderValue, DiscordError> {
    let mut value = HeaderValue::from_str(&format!("Bot {}", token.expose_secret()))
        .map_err(|_| DiscordError::Config("the bot token is not header-safe".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

impl DiscordClient {
    /// Whether `secret` is the client secret in use.
    pub fn uses_client_secret(&self, secret: &SecretString) -> bool {
        basic_auth(self.client_id(), secret).is_ok_and(|h| h == self.credentials().basic_auth)
    }

    /// Whether `token` is the bot token in use.
    pub fn uses_bot_token(&self, token: &SecretString) -> bool {
        self.credentials()
            .bot
            .as_ref()
            .is_some_and(|(t, _)| t.expose_secret() == token.expose_secret())
    }

    /// The bot token in use (the Gateway identifies with it at each connection).
    pub fn bot_token(&self) -> Option<SecretString> {
        self.credentials().bot.as_ref().map(|(t, _)| t.clone())
    }

    /// Tries `secret` at Discord's token endpoint: `Ok` when Discord accepts the client with it.
    pub async fn check_client_secret(&self, secret: &SecretString) -> Result<(), DiscordError> {
        let header = basic_auth(self.client_id(), secret)?;
        // A fresh random code and PKCE verifier: never one Discord issued, so nothing is redeemed.
        let code = crate::domain::OpaqueToken::generate();
        let verifier = crate::domain::OpaqueToken::generate();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "authorization_code"),
                ("code", code.expose()),
                ("redirect_uri", self.redirect_uri()),
                ("code_verifier", verifier.expose()),
            ])
            .finish();
        let url = self.token_url().clone();
        let answer = self
            .transport()
            .send(DiscordRoute::Token, "app", || {
                self.transport()
                    .http()
                    .post(url.clone())
                    .header(AUTHORIZATION, header.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(ACCEPT, "application/json")
                    .body(body.clone())
            })
            .await?;
        match oauth_error(&answer) {
            _ if answer.status.is_success() => Ok(()),
            DiscordError::InvalidGrant => Ok(()),
            other => Err(other),
        }
    }

    /// Tries `token` with `GET /users/@me`: the bot user when Discord accepts it.
    pub async fn check_bot_token_candidate(
        &self,
        token: &SecretString,
    ) -> Result<api::User, DiscordError> {
        let header = bot_auth(token)?;
        let url = self.endpoint_url(&["users", "@me"])?;
        let answer = self
            .transport()
            .send(DiscordRoute::Me, "bot-candidate", || {
                self.transport()
                    .http()
                    .get(url.clone())
                    .header(AUTHORIZATION, header.clone())
                    .header(ACCEPT, "application/json")
            })
            .await?;
        if answer.status.is_success() {
            parse(&answer.body)
        } else {
            Err(rest_error(&answer))
        }
    }

    /// From now on, `secret` authenticates guildgate at Discord's token endpoints.
    pub fn use_client_secret(&self, secret: &SecretString) -> Result<(), DiscordError> {
        let header = basic_auth(self.client_id(), secret)?;
        self.replace_credentials(|c| c.basic_auth = header);
        Ok(())
    }

    /// From now on, `token` is the bot's: its REST reads use it, and the Gateway connection is
    /// made again with it (see [`DiscordClient::bot_token_changes`]). Nothing without a bot.
    pub fn use_bot_token(&self, token: &SecretString) -> Result<(), DiscordError> {
        let header = bot_auth(token)?;
        let mut replaced = false;
        self.replace_credentials(|c| {
            if c.bot.is_some() {
                c.bot = Some((token.clone(), header));
                replaced = true;
            }
        });
        if replaced {
            self.bot_token_replaced();
        }
        Ok(())
    }
}
