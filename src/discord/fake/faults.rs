//! Fault injection and Discord-shaped API answers: rate-limit headers, 429s, JSON errors.

use super::state::{RateInfo, State};
use super::{FakeRoute, Fault, lock};
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, HttpResponseBuilder};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

/// What the injected fault (if any) leaves for the handler to do.
pub(super) enum Prelude {
    /// Handle the request; `malformed` = answer success with a broken body.
    Continue {
        /// Whether a success answer must carry truncated JSON.
        malformed: bool,
    },
    /// Answer this instead.
    Respond(HttpResponse),
}

/// Counts the call and applies the route's fault. Sleeps (for `Slow`) without holding the lock.
pub(super) async fn prelude(state: &Mutex<State>, route: FakeRoute) -> Prelude {
    let fault = {
        let mut s = lock(state);
        s.count_call(route);
        s.take_fault(route)
    };
    match fault {
        Some(Fault::Slow { delay, .. }) => {
            actix_web::rt::time::sleep(delay).await;
            Prelude::Continue { malformed: false }
        }
        Some(Fault::RateLimited { retry_after, .. }) => {
            let info = RateInfo {
                limit: 1,
                remaining: 0,
                reset_after: std::time::Duration::try_from_secs_f64(retry_after)
                    .unwrap_or_default(),
                bucket: super::state::bucket_id(route),
                exceeded: true,
            };
            Prelude::Respond(too_many_requests(&info, retry_after, "user"))
        }
        Some(Fault::ServerError { .. }) => Prelude::Respond(
            HttpResponse::InternalServerError()
                .json(serde_json::json!({"message": "500: Internal Server Error", "code": 0})),
        ),
        Some(Fault::MalformedJson { .. }) => Prelude::Continue { malformed: true },
        Some(Fault::OversizedBody { json, padding, .. }) => Prelude::Respond(
            HttpResponse::Ok()
                .content_type("application/json")
                .body(Padded {
                    json: Some(Bytes::from(json.to_string())),
                    left: padding,
                }),
        ),
        Some(Fault::WrongIssuer) | None => Prelude::Continue { malformed: false },
    }
}

/// Adds `X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket` (docs: topics/rate-limits).
pub(super) fn with_limits(
    mut builder: HttpResponseBuilder,
    info: &RateInfo,
) -> HttpResponseBuilder {
    builder
        .insert_header(("X-RateLimit-Limit", info.limit.to_string()))
        .insert_header(("X-RateLimit-Remaining", info.remaining.to_string()))
        .insert_header(("X-RateLimit-Reset", format!("{:.3}", info.reset_epoch())))
        .insert_header((
            "X-RateLimit-Reset-After",
            format!("{:.3}", info.reset_after.as_secs_f64()),
        ))
        .insert_header(("X-RateLimit-Bucket", info.bucket));
    builder
}

/// A 429 in Discord's documented shape: `{message, retry_after, global}` plus `Retry-After`
/// (whole seconds, rounded up) and `X-RateLimit-Scope`.
pub(super) fn too_many_requests(info: &RateInfo, retry_after: f64, scope: &str) -> HttpResponse {
    let retry_header = retry_after.max(0.0).ceil() as u64;
    with_limits(HttpResponse::TooManyRequests(), info)
        .insert_header(("Retry-After", retry_header.to_string()))
        .insert_header(("X-RateLimit-Scope", scope.to_owned()))
        .json(serde_json::json!({
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": false,
        }))
}

/// Discord's JSON error `{"message", "code"}` with rate-limit headers.
pub(super) fn json_error(
    status: StatusCode,
    info: &RateInfo,
    message: &str,
    code: i64,
) -> HttpResponse {
    with_limits(HttpResponse::build(status), info)
        .json(serde_json::json!({"message": message, "code": code}))
}

/// A success answer, or truncated JSON under the `MalformedJson` fault.
pub(super) fn ok_json(info: &RateInfo, body: &serde_json::Value, malformed: bool) -> HttpResponse {
    let mut builder = with_limits(HttpResponse::Ok(), info);
    if malformed {
        let text = body.to_string();
        let cut = text.len() / 2;
        let broken: String = text.chars().take(cut).collect();
        return builder.content_type("application/json").body(broken);
    }
    builder.json(body)
}

/// Counts the request against the route's window; `Err` is the 429 to send when it is exceeded.
pub(super) fn count_window(
    state: &mut State,
    route: FakeRoute,
    who: &str,
) -> Result<RateInfo, HttpResponse> {
    let info = state.rate_window(route, who);
    if info.exceeded {
        let retry_after = (info.reset_after.as_secs_f64() * 1000.0).ceil() / 1000.0;
        return Err(too_many_requests(&info, retry_after, "user"));
    }
    Ok(info)
}

/// A JSON document, then `left` bytes of whitespace in 64 KiB chunks, with no declared size
/// (chunked transfer encoding), for [`Fault::OversizedBody`].
struct Padded {
    json: Option<Bytes>,
    left: usize,
}

impl MessageBody for Padded {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if let Some(json) = self.json.take() {
            return Poll::Ready(Some(Ok(json)));
        }
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        Poll::Ready(Some(Ok(Bytes::from(vec![b' '; n]))))
    }
}
