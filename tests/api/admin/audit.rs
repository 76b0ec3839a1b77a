//! Every administration mutation is one transaction with exactly one audit row; a refused or
//! failed one writes nothing. The trail cannot be rewritten, outlives its target anonymised,
//! and records what an admin's impersonation session did, over HTTP and WebSocket.

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use super::{GRANT, admin_post, as_staff, audit_rows, staff};
use crate::photo_jobs::{grant, state};
use crate::support::{TestApp, first_code};

const BAN: &str = "mutation($input: BanUserInput!) { banUser(input: $input) { person { ban { reason expiresAt } } sessionsRevoked } }";
const UNBAN: &str =
    "mutation($input: PersonActionInput!) { unbanUser(input: $input) { ban { reason } } }";
const REVOKE: &str =
    "mutation($input: PersonActionInput!) { revokeSessions(input: $input) { sessionsRevoked } }";
const LOG: &str = "query($target: ID, $actor: ID) { auditLog(targetId: $target, actorId: $actor) {
  nodes { actorId actorRole impersonating targetId action reason before after }
  totalCount
} }";

#[tokio::test]
async fn every_mutation_writes_exactly_one_audit_row_and_a_refused_one_none() {
    let app = TestApp::spawn().await;
    let admin = staff(&app, "Ada", "admin").await;
    let support = staff(&app, "Sam", "support").await;
    let person = app.user("Target").await;
    grant(&app, &person, 1_000).await;
    let target = person.id.as_str();

    // Refused: nothing changes, nothing is audited.
    let refused: [(&str, &str, Value, &str); 10] = [
        (
            "support bans",
            BAN,
            json!({ "userId": target, "reason": "spam" }),
            "FORBIDDEN",
        ),
        (
            "support revokes",
            REVOKE,
            json!({ "userId": target, "reason": "r" }),
            "FORBIDDEN",
        ),
        (
            "over support's limit",
            GRANT,
            json!({ "userId": target, "amount": "20.01", "reason": "r" }),
            "BAD_USER_INPUT",
        ),
        (
            "under support's limit",
            GRANT,
            json!({ "userId": target, "amount": "-20.01", "reason": "r" }),
            "BAD_USER_INPUT",
        ),
        (
            "zero",
            GRANT,
            json!({ "userId": target, "amount": "0", "reason": "r" }),
            "BAD_USER_INPUT",
        ),
        (
            "no reason",
            GRANT,
            json!({ "userId": target, "amount": "1", "reason": "  " }),
            "BAD_USER_INPUT",
        ),
        (
            "nobody",
            GRANT,
            json!({ "userId": "nobody", "amount": "1", "reason": "r" }),
            "NOT_FOUND",
        ),
        (
            "long reason",
            GRANT,
            json!({ "userId": target, "amount": "1", "reason": "x".repeat(501) }),
            "BAD_USER_INPUT",
        ),
        (
            "bad amount",
            GRANT,
            json!({ "userId": target, "amount": "1.001", "reason": "r" }),
            "BAD_USER_INPUT",
        ),
        (
            "to oneself",
            GRANT,
            json!({ "userId": support.id, "amount": "1", "reason": "r" }),
            "BAD_USER_INPUT",
        ),
    ];
    for (what, mutation, input, code) in refused {
        let body = as_staff(&app, &support, mutation, json!({ "input": input })).await;
        assert_eq!(first_code(&body), code, "{what}: {body}");
    }
    for (what, mutation, input) in [
        (
            "ban self",
            BAN,
            json!({ "userId": admin.id, "reason": "r" }),
        ),
        (
            "ban in the past",
            BAN,
            json!({ "userId": target, "reason": "r", "expiresAt": "2020-01-01T00:00:00Z" }),
        ),
        (
            "ban nobody",
            BAN,
            json!({ "userId": "nobody", "reason": "r" }),
        ),
        (
            "unban nobody",
            UNBAN,
            json!({ "userId": "nobody", "reason": "r" }),
        ),
    ] {
        let body = as_staff(&app, &admin, mutation, json!({ "input": input })).await;
        assert!(body.get("errors").is_some(), "{what}: {body}");
    }
    assert_eq!(audit_rows(&app).await, 0);
    assert_eq!(
        state(&app, &person).await.3,
        1_000,
        "the balance is untouched"
    );

    // Done: one row each, with the actor, the role, the target, before and after.
    let body = as_staff(
        &app,
        &support,
        GRANT,
        json!({ "input": { "userId": target, "amount": "20.00", "reason": "a bad result" } }),
    )
    .await;
    assert_eq!(
        body["data"]["grantCredits"],
        json!({ "balance": "30.00", "entry": { "kind": "ADJUSTMENT", "amount": "20.00", "balanceAfter": "30.00", "description": "Credits added by support" } }),
        "{body}"
    );
    let body = as_staff(
        &app,
        &admin,
        GRANT,
        json!({ "input": { "userId": target, "amount": "-30.01", "reason": "too much" } }),
    )
    .await;
    assert_eq!(
        first_code(&body),
        "INSUFFICIENT_CREDITS",
        "a take-back never leaves the balance below zero: {body}"
    );
    assert_eq!(
        audit_rows(&app).await,
        1,
        "a refused take-back is not audited"
    );
    let body = as_staff(
        &app,
        &admin,
        GRANT,
        json!({ "input": { "userId": target, "amount": "-30.00", "reason": "chargeback fraud" } }),
    )
    .await;
    assert_eq!(body["data"]["grantCredits"]["balance"], "0.00", "{body}");
    let body = as_staff(&app, &admin, BAN, json!({ "input": { "userId": target, "reason": "abuse", "expiresAt": "2099-01-01T00:00:00Z" } })).await;
    assert_eq!(
        body["data"]["banUser"],
        json!({ "person": { "ban": { "reason": "abuse", "expiresAt": "2099-01-01T00:00:00+00:00" } }, "sessionsRevoked": 1 }),
        "{body}"
    );
    let body = app.query_as(&person, "{ viewer { id } }", json!({})).await;
    assert_eq!(
        body["data"]["viewer"],
        Value::Null,
        "the session is gone: {body}"
    );
    let body = as_staff(
        &app,
        &admin,
        UNBAN,
        json!({ "input": { "userId": target, "reason": "appeal" } }),
    )
    .await;
    assert_eq!(body["data"]["unbanUser"]["ban"], Value::Null, "{body}");
    let body = as_staff(
        &app,
        &admin,
        REVOKE,
        json!({ "input": { "userId": target, "reason": "lost phone" } }),
    )
    .await;
    assert_eq!(
        body["data"]["revokeSessions"]["sessionsRevoked"], 0,
        "{body}"
    );
    assert_eq!(audit_rows(&app).await, 5);

    let body = as_staff(&app, &support, LOG, json!({ "target": target })).await;
    let log = &body["data"]["auditLog"];
    assert_eq!(log["totalCount"], 5, "{body}");
    let rows: Vec<(&str, &str, &str)> = log["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["action"].as_str().unwrap(),
                n["actorRole"].as_str().unwrap(),
                n["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("REVOKE_SESSIONS", "admin", "lost phone"),
            ("UNBAN", "admin", "appeal"),
            ("BAN", "admin", "abuse"),
            ("GRANT_CREDITS", "admin", "chargeback fraud"),
            ("GRANT_CREDITS", "support", "a bad result"),
        ]
    );
    let grant_row = &log["nodes"][4];
    assert_eq!(grant_row["actorId"], support.id);
    assert_eq!(grant_row["before"]["balance"], "10.00");
    assert_eq!(grant_row["after"]["balance"], "30.00");
    let ban_row = &log["nodes"][2];
    assert_eq!(ban_row["before"]["banned"], false);
    assert_eq!(ban_row["after"]["banned"], true);
    assert_eq!(ban_row["after"]["sessionsRevoked"], 1);
    let body = as_staff(&app, &support, LOG, json!({ "actor": support.id })).await;
    assert_eq!(body["data"]["auditLog"]["totalCount"], 1, "{body}");
}

#[tokio::test]
async fn the_audit_trail_cannot_be_rewritten_and_outlives_its_target() {
    let app = TestApp::spawn().await;
    let admin = staff(&app, "Ada", "admin").await;
    let person = app.user("Leaving").await;
    let body = as_staff(
        &app,
        &admin,
        GRANT,
        json!({ "input": { "userId": person.id, "amount": "1.00", "reason": "welcome" } }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    let mut conn = app.db().await;
    for statement in [
        "UPDATE admin_audit SET reason = 'rewritten'",
        "UPDATE admin_audit SET target_id = 'deleted_x'",
        "DELETE FROM admin_audit",
        "TRUNCATE admin_audit",
    ] {
        let error = conn.batch_execute(statement).await.unwrap_err().to_string();
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
    // Better Auth's deleteUser (or an operator's DELETE): the row stays, its target a tombstone.
    conn.batch_execute(&format!(
        "DELETE FROM session WHERE \"userId\" = '{0}'; DELETE FROM \"user\" WHERE id = '{0}'",
        person.id
    ))
    .await
    .unwrap();
    let body = as_staff(&app, &admin, LOG, json!({})).await;
    let nodes = body["data"]["auditLog"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(nodes.len(), 1, "{body}");
    let target = nodes[0]["targetId"].as_str().unwrap();
    assert!(
        target.starts_with("deleted_") && !target.contains(&person.id),
        "{target}"
    );
    assert_eq!(nodes[0]["reason"], "welcome");
    assert_eq!(nodes[0]["actorId"], admin.id);
    // Once a tombstone, always that one: nobody relabels or merges the rows of the departed.
    for statement in [
        "UPDATE admin_audit SET target_id = 'deleted_other'".to_owned(),
        format!("UPDATE admin_audit SET target_id = '{}'", person.id),
    ] {
        let error = conn
            .batch_execute(&statement)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
}

#[tokio::test]
async fn what_an_impersonation_session_does_is_audited_under_the_admins_name() {
    let app = TestApp::spawn().await;
    let admin = staff(&app, "Ada", "admin").await;
    let person = app.user("Seen").await;
    app.db()
        .await
        .batch_execute(&format!(
            "UPDATE session SET \"impersonatedBy\" = '{}' WHERE \"userId\" = '{}'",
            admin.id, person.id
        ))
        .await
        .unwrap();
    for _ in 0..2 {
        let body = app
            .query_as(
                &person,
                "query Dashboard { viewer { id credits { balance } } }",
                json!({}),
            )
            .await;
        assert_eq!(body["data"]["viewer"]["id"], person.id, "{body}");
    }
    let body = app
        .query_as(
            &person,
            "mutation Buy { purchaseCredits(pack: \"SMALL\") { url } }",
            json!({}),
        )
        .await;
    assert_eq!(first_code(&body), "IMPERSONATION_NOT_ALLOWED", "{body}");
    // A live connection it opens is one row, at its sign-in.
    let mut live = crate::live::Client::signed_in(&app, &person).await;
    live.send(json!({ "type": "ping" })).await;
    assert_eq!(live.next().await["type"], "pong");
    let body = as_staff(&app, &admin, LOG, json!({ "target": person.id })).await;
    let nodes: Vec<(String, String, bool, String)> = body["data"]["auditLog"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["actorId"].as_str().unwrap().to_owned(),
                n["action"].as_str().unwrap().to_owned(),
                n["impersonating"].as_bool().unwrap(),
                n["after"]["operation"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |action: &str, operation: &str| {
        (
            admin.id.clone(),
            action.to_owned(),
            true,
            operation.to_owned(),
        )
    };
    assert_eq!(
        nodes,
        [
            row("IMPERSONATED_CONNECTION", "connection_init"),
            row("IMPERSONATED_WRITE", "Buy"),
            row("IMPERSONATED_READ", "Dashboard"),
            row("IMPERSONATED_READ", "Dashboard")
        ],
        "each request, the cached answer's too: {body}"
    );
    // At the admin endpoint, an impersonation is the person, not the admin.
    let (status, _) = admin_post(
        &app,
        "{ me { id } }",
        json!({}),
        &[("cookie", person.cookie())],
    )
    .await;
    assert_eq!(status, 403, "an impersonation is the person, not the admin");
}
