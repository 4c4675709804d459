//! A code redeemed in one trip (`redeem_auth_code`): spent together with its grant and first
//! refresh token when every check holds, and left untouched (nothing spent, nothing granted)
//! when any does not, so the full path can tell the client what was wrong.

use super::*;
use crate::test_db::backends;
use guildgate::domain::Jkt;
use guildgate::store::{CodeExchange, CodeRedemption, SpentCode};

/// The verifier of the fixture codes' challenge (RFC 7636, appendix B).
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "https://wiki.example.com/cb";

fn challenge_of(verifier: &str) -> PkceChallenge {
    PkceChallenge::of(&PkceVerifier::parse(verifier).expect("a verifier"))
}

/// What the fixture's client presents for a fixture code, right: its id, the redirect URI,
/// the verifier's challenge, no DPoP proof; the grant lives 30 days.
fn exchange<'a>(
    client_id: &'a ClientId,
    challenge: Option<&'a PkceChallenge>,
    refresh: Option<&'a NewRefreshToken>,
) -> CodeExchange<'a> {
    CodeExchange {
        client_id,
        redirect_uri: REDIRECT,
        code_challenge: challenge,
        proof: None,
        offline_possible: false,
        grant_expires_at: NOW + Duration::days(30),
        grant_dpop_jkt: None,
        refresh,
    }
}

/// Stores `issued`, then redeems it in one trip with `terms` at `at`.
async fn stored_and_redeemed(
    t: &Fixture,
    issued: &AuthCodeRecord,
    terms: &CodeExchange<'_>,
    at: OffsetDateTime,
) -> Option<SpentCode> {
    t.store.insert_auth_code(issued).await.unwrap();
    t.store
        .redeem_auth_code(&issued.code_hash, terms, at)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_code_redeemed_in_one_trip_is_spent_with_its_grant_and_first_refresh_token() {
    for backend in backends() {
        for with_refresh in [true, false] {
            // Arrange
            let t = fixture(backend).await;
            let (_, s) = signed_in(&*t.store, ADA).await;
            let (hash, issued) = code(&s, NOW + Duration::seconds(60));
            t.store.insert_auth_code(&issued).await.unwrap();
            let (id, challenge) = (client(CLIENT), challenge_of(VERIFIER));
            let (token, first) = refresh(NOW + Duration::days(1));
            let key = Jkt::parse("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I").unwrap();
            let terms = CodeExchange {
                grant_dpop_jkt: Some(&key),
                ..exchange(&id, Some(&challenge), with_refresh.then_some(&first))
            };

            // Act
            let spent = t.store.redeem_auth_code(&hash, &terms, NOW).await.unwrap();

            // Assert: the code as issued, with its person.
            let person = t.store.get_user(&issued.user_id).await.unwrap().unwrap();
            assert_eq!(
                spent,
                Some(SpentCode {
                    code: issued.clone(),
                    person
                }),
                "{backend:?}"
            );
            // The grant the code was issued for, under the code's session.
            let written = t.store.get_grant(&issued.grant_id).await.unwrap();
            assert_eq!(
                written,
                Some(GrantRecord {
                    id: issued.grant_id.clone(),
                    client_id: id.clone(),
                    user_id: issued.user_id.clone(),
                    session_id: Some(s.id.clone()),
                    scopes: issued.scopes,
                    auth_time: issued.auth_time,
                    created_at: NOW,
                    expires_at: NOW + Duration::days(30),
                    revoked_at: None,
                    dpop_jkt: Some(key.clone()),
                })
            );
            // Its first refresh token works, when there is one.
            let holder = t.store.find_refresh_grant(&token, NOW).await.unwrap();
            assert_eq!(
                holder.map(|g| g.id),
                with_refresh.then(|| issued.grant_id.clone())
            );
            // The code is spent: presenting it again is a replay, which revokes the grant.
            let again = t.store.consume_auth_code(&hash, NOW).await.unwrap();
            assert_eq!(
                again,
                CodeRedemption::Replayed {
                    grant_id: issued.grant_id.clone()
                }
            );
            let revoked = t.store.get_grant(&issued.grant_id).await.unwrap().unwrap();
            assert_eq!(revoked.revoked_at, Some(NOW));
        }
    }
}

#[tokio::test]
async fn a_code_that_fails_any_check_is_neither_spent_nor_granted() {
    let other_client = client("grafana");
    let wrong_challenge = challenge_of("a-different-verifier-of-the-right-length-000000");
    let key = Jkt::parse("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I").unwrap();
    let other_key = Jkt::parse("1ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I").unwrap();
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let (id, challenge) = (client(CLIENT), challenge_of(VERIFIER));
        let right = exchange(&id, Some(&challenge), None);
        // Each case: what the code was issued with, what is presented, and when.
        let cases: Vec<(&str, AuthCodeRecord, CodeExchange<'_>, OffsetDateTime)> = vec![
            (
                "another client",
                code(&s, NOW + Duration::seconds(60)).1,
                CodeExchange {
                    client_id: &other_client,
                    ..right
                },
                NOW,
            ),
            (
                "another redirect URI",
                code(&s, NOW + Duration::seconds(60)).1,
                CodeExchange {
                    redirect_uri: "https://wiki.example.com/other",
                    ..right
                },
                NOW,
            ),
            (
                "a verifier of another challenge",
                code(&s, NOW + Duration::seconds(60)).1,
                CodeExchange {
                    code_challenge: Some(&wrong_challenge),
                    ..right
                },
                NOW,
            ),
            (
                "no verifier for a code with a challenge",
                code(&s, NOW + Duration::seconds(60)).1,
                CodeExchange {
                    code_challenge: None,
                    ..right
                },
                NOW,
            ),
            (
                "a verifier for a code without a challenge",
                AuthCodeRecord {
                    code_challenge: None,
                    ..code(&s, NOW + Duration::seconds(60)).1
                },
                right,
                NOW,
            ),
            (
                "an expired code",
                code(&s, NOW + Duration::seconds(60)).1,
                right,
                NOW + Duration::seconds(60),
            ),
            (
                "a code bound to a DPoP key, without a proof",
                AuthCodeRecord {
                    dpop_jkt: Some(key.clone()),
                    ..code(&s, NOW + Duration::seconds(60)).1
                },
                right,
                NOW,
            ),
            (
                "a code bound to a DPoP key, with another key's proof",
                AuthCodeRecord {
                    dpop_jkt: Some(key.clone()),
                    ..code(&s, NOW + Duration::seconds(60)).1
                },
                CodeExchange {
                    proof: Some(&other_key),
                    ..right
                },
                NOW,
            ),
            (
                "offline_access for a client that may be granted it",
                AuthCodeRecord {
                    scopes: scopes("openid offline_access"),
                    ..code(&s, NOW + Duration::seconds(60)).1
                },
                CodeExchange {
                    offline_possible: true,
                    ..right
                },
                NOW,
            ),
        ];
        for (case, issued, terms, at) in cases {
            let spent = stored_and_redeemed(&t, &issued, &terms, at).await;

            assert_eq!(spent, None, "{backend:?}: {case}");
            assert_eq!(
                t.store.get_grant(&issued.grant_id).await.unwrap(),
                None,
                "{backend:?}: {case}: no grant"
            );
            // Still unspent: the full path spends it and tells what was wrong.
            let full = t.store.consume_auth_code(&issued.code_hash, at).await;
            assert!(
                matches!(full, Ok(CodeRedemption::Redeemed(_))),
                "{backend:?}: {case}: {full:?}"
            );
        }

        // The same checks pass where they should: a DPoP-bound code with its key's proof, and
        // offline_access asked of a client that may not be granted it (a session-bound grant).
        let bound = AuthCodeRecord {
            dpop_jkt: Some(key.clone()),
            ..code(&s, NOW + Duration::seconds(60)).1
        };
        let offline = AuthCodeRecord {
            scopes: scopes("openid offline_access"),
            ..code(&s, NOW + Duration::seconds(60)).1
        };
        let with_key = CodeExchange {
            proof: Some(&key),
            ..right
        };
        for (issued, terms) in [(bound, with_key), (offline, right)] {
            let spent = stored_and_redeemed(&t, &issued, &terms, NOW).await;
            assert!(spent.is_some(), "{backend:?}: {:?}", issued.scopes);
            let written = t.store.get_grant(&issued.grant_id).await.unwrap().unwrap();
            assert_eq!(written.session_id, Some(s.id.clone()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_one_trip_redemptions_redeem_exactly_once() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let (hash, issued) = code(&s, NOW + Duration::seconds(60));
        t.store.insert_auth_code(&issued).await.unwrap();

        let redeemed = successes_of_ten(&t.store, |store| {
            let hash = hash.clone();
            async move {
                let (id, challenge) = (client(CLIENT), challenge_of(VERIFIER));
                let terms = exchange(&id, Some(&challenge), None);
                let spent = store.redeem_auth_code(&hash, &terms, NOW).await.unwrap();
                spent.is_some()
            }
        })
        .await;

        assert_eq!(redeemed, 1, "{backend:?}");
    }
}
