//! A code whose redemption is refused is spent all the same: the request that fits, sent after,
//! meets a used code (RFC 6749 §4.1.2), so whoever holds a stolen code gets one try.

use crate::browser::Browser;
use crate::helpers::{ALICE, APP, APP_REDIRECT, Reply, pkce, spawn_app};

#[tokio::test]
async fn a_code_refused_for_a_wrong_verifier_or_redirect_uri_cannot_be_redeemed_after() {
    for wrong in ["verifier", "redirect_uri"] {
        // Arrange
        let app = spawn_app().await;
        let (challenge, verifier) = pkce();
        let (_, someone_elses_verifier) = pkce();
        let code = app
            .code_for(
                &mut Browser::new(),
                APP,
                APP_REDIRECT,
                &[
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
                ALICE,
            )
            .await;
        let (redirect, presented) = match wrong {
            "verifier" => (APP_REDIRECT, someone_elses_verifier.as_str()),
            _ => ("https://app.example.com/second?keep=1", verifier.as_str()),
        };
        let refused = Reply::read(app.redeem(&code, redirect, Some(presented)).await).await;
        assert_eq!(refused.status, 400, "{wrong}: {:?}", refused.body);
        assert_eq!(refused.error(), "invalid_grant", "{wrong}");

        // Act: everything right this time.
        let after = Reply::read(app.redeem(&code, APP_REDIRECT, Some(&verifier)).await).await;

        // Assert
        assert_eq!(after.status, 400, "{wrong}: {:?}", after.body);
        assert_eq!(after.error(), "invalid_grant", "{wrong}");
        assert_eq!(
            after.body["error_description"], "the authorization code was already used",
            "{wrong}"
        );
    }
}
