//! The profile from a server (issue 26): with a profile guild, `name` and `nickname` are the
//! person's server nickname, else their display name, else their username, and `picture` their
//! server avatar, else their account avatar; changes follow Discord at the first refresh after
//! `discord.membership_ttl`, and at once on the bot's Gateway.

use crate::browser::Browser;
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, BOB, Reply, Rp, TestApp, client_toml, refresh_as, spawn_app_with, tokens_via,
};
use guildgate::discord::fake::{FakeData, FakeRoute};
use guildgate::discord::gateway::events;
use serde_json::Value;
use std::time::Duration;

const COMMUNITY: &str = "812345678901234567";
const DAVE: &str = "1146178934729273344";
/// Bob's server avatar in the community guild (config/dev-discord.toml).
const BOB_SERVER_AVATAR: &str = "5e1f0c9a8b7d6e4f3a2b1c0d9e8f7a6b";
/// Past `discord.membership_ttl` (5 min).
const PAST_TTL: Duration = Duration::from_secs(5 * 60 + 1);

/// Shows people by their community profile (the `[discord]` default).
const FORUM: Rp = Rp {
    id: "forum",
    secret: "forum-secret-forum-secret",
    redirect: "https://forum.example.com/cb",
};
/// Opts out of the default with `profile_guild = ""`.
const PLAIN: Rp = Rp {
    id: "plain",
    secret: "plain-secret-plain-secret",
    redirect: "https://plain.example.com/cb",
};

/// The default profile guild, read with the person's token (kept sealed for re-checks).
fn config() -> String {
    format!(
        "[discord]\nprofile_guild = \"{COMMUNITY}\"\n[secrets]\nencryption_key = \"{key}\"\n{forum}{plain}",
        key = "ef".repeat(32),
        forum = client_toml(FORUM, "refresh_tokens = true"),
        plain = client_toml(PLAIN, "profile_guild = \"\""),
    )
}

/// The same with the bot reading members; its Gateway is unreachable, so tests hand Gateway
/// events to the flow themselves, one step at a time.
fn bot_config() -> String {
    format!(
        "[discord]\nscopes = [\"identify\", \"email\"]\nprofile_guild = \"{COMMUNITY}\"\n\
         [discord.bot]\ntoken = \"{token}\"\ngateway_url = \"ws://127.0.0.1:9\"\n{forum}",
        token = FakeData::demo().expect("demo data").bot_token,
        forum = client_toml(FORUM, "refresh_tokens = true"),
    )
}

/// `user` signs in to `rp` with `openid profile`; the token response.
async fn sign_in(app: &TestApp, rp: Rp, user: &str) -> Reply {
    let extra = [("scope", "openid profile"), ("state", "s")];
    tokens_via(app, &mut Browser::new(), rp, &extra, user).await
}

/// The ID token's claims of a token response.
fn id_claims(reply: &Reply) -> Value {
    decode_payload(&reply.text("id_token"))
}

/// `/userinfo` for a token response's access token.
async fn userinfo(app: &TestApp, reply: &Reply) -> Value {
    Reply::read(app.userinfo(&reply.text("access_token")).await)
        .await
        .body
}

#[tokio::test]
async fn name_nickname_and_picture_fall_back_from_the_server_profile_to_the_account() {
    // Arrange
    let app = spawn_app_with(&config()).await;

    // Act
    let bob = sign_in(&app, FORUM, BOB).await;
    let alice = sign_in(&app, FORUM, ALICE).await;
    let dave = sign_in(&app, FORUM, DAVE).await;

    // Assert: Bob has a server nickname and a server avatar.
    let bob_avatar = format!(
        "https://cdn.discordapp.com/guilds/{COMMUNITY}/users/{BOB}/avatars/{BOB_SERVER_AVATAR}.png"
    );
    for claims in [id_claims(&bob), userinfo(&app, &bob).await] {
        assert_eq!(claims["name"], "Bob", "{claims}");
        assert_eq!(claims["nickname"], "Bob", "{claims}");
        assert_eq!(claims["preferred_username"], "bob.staff", "{claims}");
        assert_eq!(claims["picture"], bob_avatar.as_str(), "{claims}");
    }
    // Alice: no nickname there, so her display name; no server avatar, so her account's.
    for claims in [id_claims(&alice), userinfo(&app, &alice).await] {
        assert_eq!(claims["name"], "Alice", "{claims}");
        assert_eq!(claims["nickname"], "Alice", "{claims}");
        assert_eq!(
            claims["picture"],
            format!(
                "https://cdn.discordapp.com/avatars/{ALICE}/8342729096ea3675442027381ff50dfe.png"
            ),
            "{claims}"
        );
    }
    // Dave: no display name either, so his username; his animated account avatar.
    for claims in [id_claims(&dave), userinfo(&app, &dave).await] {
        assert_eq!(claims["name"], "dave_the_new", "{claims}");
        assert_eq!(claims["nickname"], "dave_the_new", "{claims}");
        assert_eq!(
            claims["picture"],
            format!(
                "https://cdn.discordapp.com/avatars/{DAVE}/a_1269e74af4df7417b13759eae50c83dc.gif"
            ),
            "{claims}"
        );
    }
    // One member object per person and guild: the profile came with the sign-in's read.
    assert_eq!(app.discord.calls(FakeRoute::Member), 3);
}

#[tokio::test]
async fn a_client_that_turns_the_profile_guild_off_sees_the_account_profile() {
    // Arrange
    let app = spawn_app_with(&config()).await;

    // Act
    let bob = sign_in(&app, PLAIN, BOB).await;

    // Assert
    let claims = id_claims(&bob);
    assert_eq!(claims["name"], "Bob (staff)", "{claims}");
    assert!(claims.get("nickname").is_none(), "{claims}");
    assert_eq!(
        claims["picture"], "https://cdn.discordapp.com/embed/avatars/1.png",
        "Bob has no account avatar: {claims}"
    );
}

#[tokio::test]
async fn a_new_nickname_and_avatar_show_at_the_first_refresh_after_the_membership_ttl() {
    // Arrange: Bob signs in, then changes his nickname and drops his server avatar.
    let app = spawn_app_with(&config()).await;
    let bob = sign_in(&app, FORUM, BOB).await;
    assert!(app.discord.set_nick(BOB, COMMUNITY, Some("Robert")));
    assert!(app.discord.set_server_avatar(BOB, COMMUNITY, None));

    // Act: one refresh within the TTL, one after it.
    app.state.clock.advance(Duration::from_secs(60));
    let early = refresh_as(&app, FORUM, &bob.text("refresh_token"), None).await;
    app.state.clock.advance(PAST_TTL);
    let late = refresh_as(&app, FORUM, &early.text("refresh_token"), None).await;

    // Assert
    assert_eq!(early.status, 200, "{}", early.body);
    assert_eq!(
        id_claims(&early)["name"],
        "Bob",
        "within the TTL: the snapshot"
    );
    assert_eq!(late.status, 200, "{}", late.body);
    let claims = id_claims(&late);
    assert_eq!(claims["name"], "Robert", "{claims}");
    assert_eq!(claims["nickname"], "Robert", "{claims}");
    assert_eq!(
        claims["picture"], "https://cdn.discordapp.com/embed/avatars/1.png",
        "no server avatar now, and no account avatar: Discord's default"
    );
    assert_eq!(userinfo(&app, &late).await["name"], "Robert");
}

#[tokio::test]
async fn with_the_bot_a_member_update_on_the_gateway_changes_the_profile_at_once() {
    // Arrange: Bob signs in (his member object read by the bot), then sets a new nickname.
    let app = spawn_app_with(&bot_config()).await;
    let bob = sign_in(&app, FORUM, BOB).await;
    assert_eq!(id_claims(&bob)["name"], "Bob");
    assert!(app.discord.set_nick(BOB, COMMUNITY, Some("Bobby")));
    let payload = app
        .discord
        .member_update_payload(BOB, COMMUNITY)
        .expect("Bob is a member");
    let dispatch = serde_json::json!({"op": 0, "s": 9, "t": "GUILD_MEMBER_UPDATE", "d": payload});

    // Act: the Gateway's GUILD_MEMBER_UPDATE, as the live connection hands it on.
    let event = events::parse(&dispatch.to_string()).expect("a member update");
    let ctx = app.state.context();
    guildgate::flows::deprovision::apply(&ctx, &event, app.state.clock.now())
        .await
        .expect("applied");

    // Assert: the same access token's userinfo, and a refresh within the TTL, show it.
    assert_eq!(userinfo(&app, &bob).await["name"], "Bobby");
    let refreshed = refresh_as(&app, FORUM, &bob.text("refresh_token"), None).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(id_claims(&refreshed)["nickname"], "Bobby");
    assert_eq!(
        id_claims(&refreshed)["picture"],
        format!(
            "https://cdn.discordapp.com/guilds/{COMMUNITY}/users/{BOB}/avatars/{BOB_SERVER_AVATAR}.png"
        )
        .as_str()
    );
}
