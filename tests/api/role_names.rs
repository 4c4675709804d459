//! Role names in `groups` (issue 26): `group_format = "name"` or `"both"` writes a role entry by
//! the role's name in Discord, read through the bot's role list; a renamed role shows at the
//! first refresh after `discord.membership_ttl` (never later), and at once on the Gateway's
//! role event. Without a bot `check-config` refuses it (`config_validation.rs`).

use crate::browser::Browser;
use crate::flow::decode_payload;
use crate::helpers::{
    BOB, Reply, Rp, TestApp, client_toml, refresh_as, spawn_app_with, tokens_via,
};
use guildgate::discord::fake::{FakeData, FakeRoute};
use guildgate::discord::gateway::role_events;
use serde_json::{Value, json};
use std::time::Duration;

const COMMUNITY: &str = "812345678901234567";
const STAFF_ROLE: &str = "845611301132730378";

/// Role entries by Discord name.
const NAMES: Rp = Rp {
    id: "names",
    secret: "names-secret-names-secret",
    redirect: "https://names.example.com/cb",
};
/// Both the configured name and the Discord name.
const BOTH: Rp = Rp {
    id: "both",
    secret: "both-secret-both-secret",
    redirect: "https://both.example.com/cb",
};
/// The default: configured names only.
const IDS: Rp = Rp {
    id: "ids",
    secret: "ids-secret-ids-secret",
    redirect: "https://ids.example.com/cb",
};

/// A bot reads members and role lists; its Gateway is unreachable, so the tests hand role
/// events to the flow themselves, one step at a time.
fn config() -> String {
    let groups = "groups = [\"community\", \"staff\"]\nrefresh_tokens = true";
    format!(
        r#"
[discord]
scopes = ["identify", "email"]

[discord.bot]
token = "{token}"
gateway_url = "ws://127.0.0.1:9"

[[groups]]
name = "community"
guild = "{COMMUNITY}"

[[groups]]
name = "staff"
guild = "{COMMUNITY}"
role = "{STAFF_ROLE}"
{names}{both}{ids}"#,
        token = FakeData::demo().expect("demo data").bot_token,
        names = client_toml(NAMES, &format!("{groups}\ngroup_format = \"name\"")),
        both = client_toml(BOTH, &format!("{groups}\ngroup_format = \"both\"")),
        ids = client_toml(IDS, groups),
    )
}

/// Bob signs in to `rp` with `openid groups` in a new browser; the token response.
async fn bob_signs_in(app: &TestApp, rp: Rp) -> Reply {
    let extra = [("scope", "openid groups"), ("state", "s")];
    tokens_via(app, &mut Browser::new(), rp, &extra, BOB).await
}

fn groups(reply: &Reply) -> Value {
    decode_payload(&reply.text("id_token"))["groups"].clone()
}

#[tokio::test]
async fn role_entries_of_groups_carry_discord_role_names_read_through_the_bot() {
    // Arrange
    let app = spawn_app_with(&config()).await;

    // Act
    let names = bob_signs_in(&app, NAMES).await;
    let both = bob_signs_in(&app, BOTH).await;
    let ids = bob_signs_in(&app, IDS).await;

    // Assert: membership entries keep their configured name; role entries follow the format.
    assert_eq!(groups(&names), json!(["community", "Staff"]));
    assert_eq!(groups(&both), json!(["community", "staff", "Staff"]));
    assert_eq!(groups(&ids), json!(["community", "staff"]));
    let userinfo = Reply::read(app.userinfo(&names.text("access_token")).await).await;
    assert_eq!(userinfo.body["groups"], json!(["community", "Staff"]));
    assert_eq!(
        app.discord.calls(FakeRoute::BotRoles),
        1,
        "the role list is read once and kept for the TTL"
    );
}

#[tokio::test]
async fn a_renamed_role_shows_at_the_first_refresh_after_the_ttl_and_never_later() {
    // Arrange: Bob's first sign-in reads the role list at t0; a second one at t0 + 4 min takes
    // a new snapshot from that same list. Then the Staff role is renamed in Discord (no
    // Gateway event reaches guildgate).
    let app = spawn_app_with(&config()).await;
    bob_signs_in(&app, NAMES).await;
    app.state.clock.advance(Duration::from_secs(4 * 60));
    let second = bob_signs_in(&app, NAMES).await;
    assert!(
        app.discord
            .set_role_name(COMMUNITY, STAFF_ROLE, "Moderators")
    );

    // Act: a refresh just inside the role list's TTL, and one just past it (only 61 s after
    // the second snapshot was taken).
    app.state.clock.advance(Duration::from_secs(59));
    let inside = refresh_as(&app, NAMES, &second.text("refresh_token"), None).await;
    app.state.clock.advance(Duration::from_secs(2));
    let past = refresh_as(&app, NAMES, &inside.text("refresh_token"), None).await;

    // Assert
    assert_eq!(inside.status, 200, "{}", inside.body);
    assert_eq!(groups(&inside), json!(["community", "Staff"]));
    assert_eq!(past.status, 200, "{}", past.body);
    assert_eq!(
        groups(&past),
        json!(["community", "Moderators"]),
        "the name is never older than the TTL, however young the snapshot"
    );
    assert_eq!(app.discord.calls(FakeRoute::BotRoles), 2);
}

/// Hands a role dispatch from the fake Discord's data to the live-membership flow.
async fn gateway_delivers(app: &TestApp, t: &str, data: Value) -> usize {
    let dispatch = json!({"op": 0, "s": 3, "t": t, "d": data});
    let event = role_events::parse(&dispatch.to_string()).expect("a role event");
    let ctx = app.state.context();
    guildgate::flows::community::apply_role_event(&ctx, &event, app.state.clock.now())
        .await
        .expect("applied")
}

#[tokio::test]
async fn a_role_renamed_or_deleted_on_the_gateway_changes_the_claim_at_once() {
    // Arrange: Bob is signed in to the app that shows role names.
    let app = spawn_app_with(&config()).await;
    let bob = bob_signs_in(&app, NAMES).await;

    // Act: a moderator renames the Staff role; the Gateway's GUILD_ROLE_UPDATE arrives.
    assert!(
        app.discord
            .set_role_name(COMMUNITY, STAFF_ROLE, "Moderators")
    );
    let payload = app
        .discord
        .role_update_payload(COMMUNITY, STAFF_ROLE)
        .expect("the role exists");
    let changed = gateway_delivers(&app, "GUILD_ROLE_UPDATE", payload).await;

    // Assert: the same access token and a refresh within the TTL see the new name.
    assert_eq!(changed, 1, "Bob's snapshot");
    let userinfo = Reply::read(app.userinfo(&bob.text("access_token")).await).await;
    assert_eq!(userinfo.body["groups"], json!(["community", "Moderators"]));
    let refreshed = refresh_as(&app, NAMES, &bob.text("refresh_token"), None).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(groups(&refreshed), json!(["community", "Moderators"]));

    // Act: the role is deleted.
    let deleted = json!({"guild_id": COMMUNITY, "role_id": STAFF_ROLE});
    gateway_delivers(&app, "GUILD_ROLE_DELETE", deleted).await;

    // Assert: a deleted role is a lost role.
    let after = refresh_as(&app, NAMES, &refreshed.text("refresh_token"), None).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(groups(&after), json!(["community"]));
    assert_eq!(
        app.discord.calls(FakeRoute::BotRoles),
        1,
        "events correct the list without reading it again"
    );
}
