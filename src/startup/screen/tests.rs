use super::*;

/// Feeds `input` in chunks of `chunk` bytes; returns the bytes passed on and the refusal, if
/// any.
fn run(input: &[u8], chunk: usize) -> (Vec<u8>, Option<String>) {
    let mut screened = Screened::new((), Answering::default());
    let mut passed = Vec::new();
    for piece in input.chunks(chunk) {
        let n = screened.screen(piece);
        passed.extend_from_slice(&piece[..n]);
        if let State::Refusing { reply, .. } = &screened.state {
            return (passed, Some(String::from_utf8_lossy(reply).into_owned()));
        }
    }
    (passed, None)
}

#[test]
fn ordinary_requests_and_their_bodies_pass_untouched() {
    let body = "grant_type=refresh_token&refresh_token=".to_owned() + &"x".repeat(70_000);
    let input = format!(
        "POST /token HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}GET /userinfo HTTP/1.1\r\nHost: a\r\n\r\n",
        body.len()
    );
    for chunk in [1, 7, 1024, input.len()] {
        let (passed, refused) = run(input.as_bytes(), chunk);
        assert!(
            refused.is_none(),
            "chunk {chunk}: a long body is not a long line"
        );
        assert_eq!(passed, input.as_bytes());
    }
}

#[test]
fn an_over_long_request_line_is_answered_readably() {
    let state = "s".repeat(64 * 1024);
    let page = format!("GET /authorize?client_id=app&state={state} HTTP/1.1\r\nHost: a\r\n\r\n");
    let (_, refused) = run(page.as_bytes(), 4096);
    let refused = refused.expect("refused");
    assert!(
        refused.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
        "{refused:.200}"
    );
    assert!(refused.contains("text/html"), "a page for a person");
    assert!(refused.contains("This request cannot be read"));

    let api = format!("GET /userinfo?access_token={state} HTTP/1.1\r\n\r\n");
    let (_, refused) = run(api.as_bytes(), 4096);
    let refused = refused.expect("refused");
    assert!(refused.contains("application/json"), "JSON for an app");
    assert!(
        refused.contains(r#""error":"invalid_request""#),
        "{refused}"
    );
}

#[test]
fn a_second_request_on_the_connection_is_screened_too() {
    let long = format!(
        "GET /authorize?state={} HTTP/1.1\r\n\r\n",
        "s".repeat(64 * 1024)
    );
    let input = format!("POST /token HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc{long}");
    let (passed, refused) = run(input.as_bytes(), 1000);
    assert!(refused.is_some());
    assert!(passed.starts_with(b"POST /token HTTP/1.1"));
}

#[test]
fn a_chunked_body_ends_the_screening_of_its_connection() {
    let input = format!(
        "POST /token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n{}\r\n0\r\n\r\n",
        "x".repeat(70_000)
    );
    let (passed, refused) = run(input.as_bytes(), 512);
    assert!(refused.is_none());
    assert_eq!(passed, input.as_bytes());
}

#[test]
fn an_empty_line_before_the_request_line_does_not_hide_it() {
    let long = format!(
        "GET /authorize?state={} HTTP/1.1\r\n\r\n",
        "s".repeat(64 * 1024)
    );
    let first = format!("\r\n{long}");
    let (_, refused) = run(first.as_bytes(), 1000);
    assert!(
        refused.is_some_and(|r| r.starts_with("HTTP/1.1 414 ")),
        "the request line after an empty line is screened"
    );
    // Some clients send an extra CRLF after a POST body (RFC 9112 §2.2).
    let after_body = format!("POST /token HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\r\n{long}");
    let (passed, refused) = run(after_body.as_bytes(), 1000);
    assert!(
        refused.is_some_and(|r| r.starts_with("HTTP/1.1 414 ")),
        "the next request line is screened"
    );
    assert!(passed.starts_with(b"POST /token HTTP/1.1"));
}
