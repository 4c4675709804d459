//! Stored values are parsed once, at the store's edge: one that does not parse (a row written
//! by something other than guildgate, or damaged) is an error naming its table and column,
//! never a panic and never an empty or narrowed value.

use super::{ADA, CLIENT, NOW, client, code, fixture, granted, person, scopes, signed_in};
use crate::test_db::backends;
use guildgate::store::{LogoutDelivery, StoreError, Unreadable};
use time::Duration;

/// The error a read of `table.column` must end in.
fn unreadable(table: &str, column: &str) -> impl Fn(&StoreError) -> bool {
    move |e| {
        matches!(e, StoreError::Unreadable(Unreadable { table: t, column: c, .. })
            if *t == table && *c == column)
    }
}

#[tokio::test]
async fn a_grant_with_a_scope_we_do_not_support_is_unreadable_not_narrowed() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (g, refresh) = granted(&*t.store).await;
        t.tamper("UPDATE grants SET scopes = 'openid admin'").await;

        let by_id = t.store.get_grant(&g.id).await;
        let by_token = t.store.find_refresh_grant(&refresh, NOW).await;

        let error = by_id.expect_err("not read as a narrowed grant");
        assert!(unreadable("grants", "scopes")(&error), "{error:?}");
        assert_eq!(
            error.to_string(),
            "grants.scopes holds a value that is not a list of supported scopes",
            "the message names the place, never the value"
        );
        let error = by_token.expect_err("not read as a narrowed grant");
        assert!(unreadable("grants", "scopes")(&error), "{error:?}");
    }
}

#[tokio::test]
async fn a_code_with_a_challenge_that_is_not_s256_is_unreadable() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let (hash, record) = code(&s, NOW + Duration::minutes(1));
        t.store.insert_auth_code(&record).await.unwrap();
        t.tamper("UPDATE auth_codes SET code_challenge = 'plain-challenge'")
            .await;

        let redeemed = t.store.consume_auth_code(&hash, NOW).await;

        let error = redeemed.expect_err("never redeemed without its challenge");
        assert!(
            unreadable("auth_codes", "code_challenge")(&error),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn a_consent_or_a_queued_logout_with_a_bad_id_or_scope_is_unreadable() {
    for backend in backends() {
        let t = fixture(backend).await;
        let ada = person(ADA);
        signed_in(&*t.store, ADA).await;
        t.store
            .save_consent(&ada, &client(CLIENT), scopes("openid"), NOW)
            .await
            .unwrap();
        let queued = LogoutDelivery {
            id: "d1".to_owned(),
            client_id: client(CLIENT),
            session_id: None,
            user_id: ada.clone(),
            uri: "https://wiki.example.com/backchannel-logout".to_owned(),
            logout_token: "{}".to_owned(),
            attempts: 0,
            next_attempt_at: NOW,
            created_at: NOW,
        };
        t.store.enqueue_logout_deliveries(&[queued]).await.unwrap();
        t.tamper(
            "UPDATE consents SET scopes = 'openid OpenID'; \
             UPDATE logout_deliveries SET user_id = 'ada'",
        )
        .await;

        let consent = t.store.get_consent(&ada, &client(CLIENT)).await;
        let listed = t.store.list_consents(&ada).await;
        let claimed = t
            .store
            .claim_logout_deliveries(NOW, std::time::Duration::from_secs(30), 10)
            .await;

        let error = consent.expect_err("a consent is not read as a narrower one");
        assert!(unreadable("consents", "scopes")(&error), "{error:?}");
        let error = listed.expect_err("nor listed as one");
        assert!(unreadable("consents", "scopes")(&error), "{error:?}");
        let error = claimed.expect_err("a delivery for nobody is not sent");
        assert!(
            unreadable("logout_deliveries", "user_id")(&error),
            "{error:?}"
        );
    }
}
