//! Reading Discord's answers: JSON bodies, OAuth2 and REST errors (with Discord's own text
//! made safe to log), and guild-member results. Shared by the person's, the bot's and the
//! token endpoint's calls.

use super::ratelimit::Answer;
use super::{DiscordError, api};
use reqwest::StatusCode;

/// Maps a token endpoint error: `invalid_grant` → `InvalidGrant`, others → `Rejected`.
pub(super) fn oauth_error(answer: &Answer) -> DiscordError {
    match serde_json::from_slice::<api::OAuthErrorBody>(&answer.body) {
        Ok(e) if e.error == "invalid_grant" => DiscordError::InvalidGrant,
        Ok(e) => DiscordError::Rejected {
            status: answer.status.as_u16(),
            code: None,
            message: loggable(&match e.error_description {
                Some(d) => format!("{}: {d}", e.error),
                None => e.error,
            }),
        },
        Err(_) => json_error(answer),
    }
}

/// Maps a REST error: 401 → `Unauthorized`, others → `Rejected` with Discord's code.
pub(super) fn rest_error(answer: &Answer) -> DiscordError {
    if answer.status == StatusCode::UNAUTHORIZED {
        return DiscordError::Unauthorized;
    }
    json_error(answer)
}

fn json_error(answer: &Answer) -> DiscordError {
    let (code, message) = match serde_json::from_slice::<api::ErrorBody>(&answer.body) {
        Ok(e) => (Some(e.code), loggable(&e.message)),
        Err(_) => (None, "error without a JSON body".to_owned()),
    };
    DiscordError::Rejected {
        status: answer.status.as_u16(),
        code,
        message,
    }
}

/// The longest piece of Discord's error text kept in an error (and so in the log).
const MAX_UPSTREAM_TEXT: usize = 200;
/// A run of this many token-like characters in Discord's text is taken for an echoed secret.
const SECRET_RUN: usize = 20;

/// Discord's own error text made safe to log: control characters dropped, at most 200
/// characters, and any run of 20 or more token-like characters (letters, digits, `-`, `_`, `.`:
/// an echoed code or token) replaced by `[redacted]`. Discord's messages are short sentences
/// ("Invalid \"code\" in request."), so nothing useful is lost.
fn loggable(text: &str) -> String {
    let token_like = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= SECRET_RUN {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_UPSTREAM_TEXT)
    {
        if token_like(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Whether `s` looks like a Discord id (a snowflake: decimal digits), before it goes into a
/// request path.
pub(super) fn is_snowflake(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a guild-member answer: the member, `None` for a 404 whose Discord error code is one
/// of `not_a_member` (each route says "not a member" with its own codes), and an error for
/// anything else, so a wrong base URL or a missing guild never reads as "not a member".
pub(super) fn member_answer(
    answer: &Answer,
    not_a_member: &[i64],
) -> Result<Option<api::GuildMember>, DiscordError> {
    if answer.status.is_success() {
        return parse(&answer.body).map(Some);
    }
    if answer.status == StatusCode::NOT_FOUND {
        if let Ok(body) = serde_json::from_slice::<api::ErrorBody>(&answer.body) {
            if not_a_member.contains(&body.code) {
                return Ok(None);
            }
        }
    }
    Err(rest_error(answer))
}

/// Parses JSON; the error names the position, never echoes the body (it may hold tokens).
pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, DiscordError> {
    serde_json::from_slice(body).map_err(|e| {
        DiscordError::Malformed(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discord_error_text_is_kept_short_and_without_echoed_secrets() {
        assert_eq!(
            loggable("Invalid \"code\" in request."),
            "Invalid \"code\" in request."
        );
        assert_eq!(
            loggable("bad code qWErTy1234567890AsDfGhJkLz given\n"),
            "bad code [redacted] given"
        );
        assert_eq!(
            loggable(&"x ".repeat(500)).chars().count(),
            MAX_UPSTREAM_TEXT
        );
    }
}
