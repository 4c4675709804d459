//! The device page's pages, shared by `/device` and the return from Discord (a device sign-in
//! that needed one): the code form, the confirmation, and the ways it can end. Not an endpoint.

use super::respond;
use crate::flows::device_page::{Confirmation, DevicePage};
use crate::pages;
use crate::state::AppState;
use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};

/// The code form, with what the person typed and what was wrong with it.
pub(super) fn entry_form(
    state: &AppState,
    user_code: &str,
    problem: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let html = pages::render(
        "device.html",
        minijinja::context! {
            title => "Sign in on a device",
            user_code => user_code,
            problem => problem,
            action => state.config().issuer.endpoint("/device"),
        },
    );
    html_page(status, html)
}

/// What `/device` shows next.
pub(super) fn render(state: &AppState, next: DevicePage) -> HttpResponse {
    match next {
        DevicePage::WrongCode => entry_form(
            state,
            "",
            Some("That code is not valid: check it, or start again on your device."),
            StatusCode::BAD_REQUEST,
        ),
        DevicePage::TooManyEntries => message(
            StatusCode::BAD_REQUEST,
            "This code no longer works",
            "It was entered too many times. Start the sign-in again on your device to get a new code.",
        ),
        DevicePage::SignIn(_) => message(
            StatusCode::BAD_REQUEST,
            "Please sign in again",
            "Your Discord sign-in could not be confirmed. Enter the code again.",
        ),
        DevicePage::Confirm(confirmation) => confirm(state, &confirmation),
        DevicePage::Denied(refusal) => respond::denied(state, &refusal),
        DevicePage::Unavailable => HttpResponse::ServiceUnavailable()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::RETRY_AFTER, "30"))
            .content_type("text/html; charset=utf-8")
            .body(pages::message_page(
                "Discord cannot be reached",
                "Your access to this app has to be confirmed with Discord, and Discord is not answering right now. Please enter the code again in a minute.",
            )),
    }
}

/// Too many wrong codes from this network: 429 with `Retry-After`.
pub(super) fn too_many(wait: std::time::Duration) -> HttpResponse {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HttpResponse::TooManyRequests()
        .insert_header((header::RETRY_AFTER, secs.max(1).to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(pages::message_page(
            "Too many wrong codes",
            "Too many codes that do not exist were entered from your network. Please wait a few minutes, then try again.",
        ))
}

/// The confirmation form expired, or the session it was bound to ended.
pub(super) fn expired() -> HttpResponse {
    message(
        StatusCode::BAD_REQUEST,
        "This page has expired",
        "The sign-in on your device can no longer be answered here. Start again on your device.",
    )
}

fn confirm(state: &AppState, c: &Confirmation) -> HttpResponse {
    let claims: Vec<&str> = c.scopes.iter().map(respond::describe_scope).collect();
    let age = (state.clock.now() - c.requested_at).whole_minutes();
    let requested = match age {
        i64::MIN..=0 => "just now".to_owned(),
        1 => "a minute ago".to_owned(),
        n => format!("{n} minutes ago"),
    };
    // A User-Agent is the device's own say-so: shown as text, cut short.
    let device: Option<String> = c
        .device
        .user_agent
        .as_deref()
        .map(|ua| ua.chars().take(120).collect());
    let html = pages::render(
        "device_confirm.html",
        minijinja::context! {
            title => format!("Sign in to {} on your device?", c.app),
            app => c.app,
            signed_in_as => c.signed_in_as,
            sign_out => state.config().issuer.endpoint("/logout"),
            device => device,
            ip => c.device.ip,
            requested => requested,
            claims => claims,
            ticket => c.ticket,
            action => state.config().issuer.endpoint("/device/answer"),
        },
    );
    let mut response = html_page(StatusCode::OK, html);
    response.headers_mut().insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    response
}

fn message(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    html_page(status, pages::message_page(title, text))
}

fn html_page(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(html)
}
