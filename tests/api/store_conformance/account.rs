//! What the account page reads and does: the browser a session was opened from, consents and
//! last sign-ins per app, and revoking one app's grants for one person.

use super::{ADA, BEN, CLIENT, NOW, client, fixture, grant, person, scopes, session, signed_in};
use crate::test_db::backends;
use guildgate::domain::GrantId;
use guildgate::store::{ClientSignIn, ConsentRecord, GrantRecord, SessionDevice};
use time::Duration;

#[tokio::test]
async fn a_session_keeps_the_browser_and_address_it_was_opened_from() {
    for backend in backends() {
        let t = fixture(backend).await;
        t.store.upsert_user(&super::user(ADA)).await.unwrap();
        let (secret, mut s) = session(ADA, NOW + Duration::hours(12));
        s.device = SessionDevice::new(Some("Firefox/128.0"), Some("2001:db8::7".to_owned()));

        t.store.insert_session(&s).await.unwrap();

        let found = t.store.find_session(&secret.hash(), NOW).await.unwrap();
        let listed = t
            .store
            .list_sessions(Some(&person(ADA)), NOW)
            .await
            .unwrap();
        assert_eq!(found.as_ref().map(|f| &f.device), Some(&s.device));
        assert_eq!(listed, vec![s]);
    }
}

#[test]
fn an_over_long_user_agent_is_cut_on_a_character_boundary() {
    let long = "é".repeat(400); // 800 bytes
    let device = SessionDevice::new(Some(&long), None);
    let kept = device.user_agent.unwrap();
    assert!(kept.len() <= SessionDevice::MAX_USER_AGENT);
    assert!(kept.chars().all(|c| c == 'é'));
}

#[tokio::test]
async fn consents_and_last_sign_ins_are_listed_per_app() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let (_, other) = signed_in(&*t.store, BEN).await;
        let older = grant(CLIENT, &s);
        let newer = GrantRecord {
            created_at: NOW + Duration::hours(1),
            ..grant(CLIENT, &s)
        };
        for g in [&older, &newer, &grant("chat", &s), &grant("chat", &other)] {
            t.store.insert_grant(g, None).await.unwrap();
        }
        t.store
            .save_consent(&person(ADA), &client("wiki"), scopes("openid profile"), NOW)
            .await
            .unwrap();
        t.store
            .save_consent(&person(ADA), &client("chat"), scopes("openid"), NOW)
            .await
            .unwrap();
        t.store
            .save_consent(&person(BEN), &client("wiki"), scopes("openid"), NOW)
            .await
            .unwrap();

        let consents = t.store.list_consents(&person(ADA)).await.unwrap();
        let sign_ins = t.store.last_sign_ins(&person(ADA)).await.unwrap();

        assert_eq!(
            consents,
            vec![
                ConsentRecord {
                    client_id: client("chat"),
                    scopes: scopes("openid"),
                    granted_at: NOW
                },
                ConsentRecord {
                    client_id: client("wiki"),
                    scopes: scopes("openid profile"),
                    granted_at: NOW
                },
            ]
        );
        assert_eq!(
            sign_ins,
            vec![
                ClientSignIn {
                    client_id: client("chat"),
                    last_sign_in: NOW
                },
                ClientSignIn {
                    client_id: client(CLIENT),
                    last_sign_in: NOW + Duration::hours(1)
                },
            ]
        );
    }
}

#[tokio::test]
async fn revoking_an_app_revokes_only_that_persons_grants_for_that_app() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let (_, other) = signed_in(&*t.store, BEN).await;
        let with_session = grant(CLIENT, &s);
        let offline = GrantRecord {
            session_id: None,
            ..grant(CLIENT, &s)
        };
        let another_app = grant("chat", &s);
        let another_person = grant(CLIENT, &other);
        for g in [&with_session, &offline, &another_app, &another_person] {
            t.store.insert_grant(g, None).await.unwrap();
        }

        let revoked = t
            .store
            .revoke_client_grants(&person(ADA), &client(CLIENT), NOW)
            .await
            .unwrap();
        let again = t
            .store
            .revoke_client_grants(&person(ADA), &client(CLIENT), NOW)
            .await
            .unwrap();

        let mut expected = vec![with_session.id.clone(), offline.id.clone()];
        expected.sort();
        assert_eq!(revoked, expected);
        assert!(again.is_empty(), "nothing left to revoke");
        let live: Vec<GrantId> = t
            .store
            .list_user_grants(&person(ADA), NOW)
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.id)
            .collect();
        assert_eq!(live, vec![another_app.id]);
        assert_eq!(
            t.store
                .list_user_grants(&person(BEN), NOW)
                .await
                .unwrap()
                .len(),
            1,
            "another person's grant stays"
        );
        assert_eq!(
            t.store
                .list_sessions(Some(&person(ADA)), NOW)
                .await
                .unwrap()
                .len(),
            1,
            "the session stays open for other apps"
        );
    }
}
