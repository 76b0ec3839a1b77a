//! `/admin/graphql`: staff only (401, 403), people found and read, every mutation one
//! transaction with exactly one audit row (none when refused), an audit trail that cannot be
//! rewritten and outlives its target, money invariants under concurrent grants and charges,
//! and `bff admin grant-role` for the first admin.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::photo_jobs::{grant, invariant_violations, state};
use crate::support::{TestApp, TestUser, first_code};

mod audit;
mod jobs;
mod people;
mod plans;

/// POSTs to `/admin/graphql` with `headers`: status and body.
pub(crate) async fn admin_post(
    app: &TestApp,
    query: &str,
    variables: Value,
    headers: &[(&str, String)],
) -> (u16, Value) {
    app.post_at("/admin/graphql", query, variables, headers)
        .await
}

/// Runs `query` as `staff` on `/admin/graphql`, asserting HTTP 200.
pub(crate) async fn as_staff(
    app: &TestApp,
    staff: &TestUser,
    query: &str,
    variables: Value,
) -> Value {
    let (status, body) = admin_post(app, query, variables, &[("cookie", staff.cookie())]).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A person with Better Auth's `role` column set to `roles`.
pub(crate) async fn staff(app: &TestApp, name: &str, roles: &str) -> TestUser {
    let user = app.user(name).await;
    app.db()
        .await
        .batch_execute(&format!(
            "UPDATE \"user\" SET role = '{roles}' WHERE id = '{}'",
            user.id
        ))
        .await
        .unwrap();
    user
}

/// Rows in the audit trail.
pub(crate) async fn audit_rows(app: &TestApp) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let counted: Count = diesel::sql_query("SELECT count(*) AS n FROM admin_audit")
        .get_result(&mut app.db().await)
        .await
        .unwrap();
    counted.n
}

const ME: &str = "{ me { id role grantLimit } }";

#[tokio::test]
async fn the_admin_endpoint_is_for_staff_only_and_says_nothing_else() {
    let app = TestApp::spawn().await;
    let person = app.user("Customer").await;
    let support = staff(&app, "Sam", "user,support").await;
    let admin = staff(&app, "Ada", "admin").await;
    // Without a credential, or with one that signs nobody in: 401.
    for headers in [
        vec![],
        vec![(
            "cookie",
            "better-auth.session_token=forged.c2lnbmF0dXJl".to_owned(),
        )],
        vec![("authorization", "Bearer nobody".to_owned())],
    ] {
        let (status, body) = admin_post(&app, ME, json!({}), &headers).await;
        assert_eq!(
            (status, first_code(&body)),
            (401, "UNAUTHENTICATED"),
            "{body}"
        );
    }
    // Signed in without a role: 403, whatever the document, and nothing about it.
    for document in [
        ME,
        "{ users { nodes { email } } }",
        "{ nonsense",
        "{ __schema { types { name } } }",
    ] {
        let (status, body) =
            admin_post(&app, document, json!({}), &[("cookie", person.cookie())]).await;
        assert_eq!((status, first_code(&body)), (403, "FORBIDDEN"), "{body}");
        assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(
            body["errors"][0]["message"],
            "This endpoint is for the people who run the app"
        );
    }
    let body = as_staff(&app, &support, ME, json!({})).await;
    assert_eq!(body["data"]["me"]["role"], "SUPPORT", "{body}");
    assert_eq!(body["data"]["me"]["grantLimit"], "20.00");
    let body = as_staff(&app, &admin, ME, json!({})).await;
    assert_eq!(body["data"]["me"]["role"], "ADMIN", "{body}");
    assert_eq!(body["data"]["me"]["grantLimit"], "10000.00");
    // GET carries queries, as on /graphql, and refuses mutations.
    let response = app
        .client
        .get(app.url("/admin/graphql"))
        .query(&[("query", ME)])
        .header("cookie", admin.cookie())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["me"]["id"], admin.id, "{body}");
    let response = app
        .client
        .get(app.url("/admin/graphql"))
        .query(&[("query", "mutation { revokeSessions(input: { userId: \"x\", reason: \"r\" }) { sessionsRevoked } }")])
        .header("cookie", admin.cookie())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    // The same cost limits as the viewer's: a fan-out is refused before it runs.
    let (status, body) = admin_post(
        &app,
        &bff::pipeline::cost::fan_out(22),
        json!({}),
        &[("cookie", admin.cookie())],
    )
    .await;
    assert_eq!(
        (status, first_code(&body)),
        (200, "BAD_USER_INPUT"),
        "{body}"
    );
    // And the viewer's endpoint knows none of it.
    let (_, body) = app.post(ME, json!({}), &[("cookie", admin.cookie())]).await;
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    // A staff member's ban closes the door too.
    app.db()
        .await
        .batch_execute(&format!(
            "UPDATE \"user\" SET banned = true WHERE id = '{}'",
            support.id
        ))
        .await
        .unwrap();
    let (status, _) = admin_post(&app, ME, json!({}), &[("cookie", support.cookie())]).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn refusals_at_the_admin_endpoint_pay_and_an_impersonation_is_never_staff() {
    let app = TestApp::spawn_with(|env| {
        // A burst of three refusals (each costs what a failed sign-in does, 100).
        env.insert("BFF_MAX_COST", "300".into());
        env.insert("BFF_RATE_LIMIT_BURST", "300".into());
        env.insert("BFF_RATE_LIMIT_PER_SECOND", "1".into());
    })
    .await;
    let person = app.user("Prober").await;
    // Each 403 costs as much as a failed sign-in (100): the fourth is past the burst.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            admin_post(&app, ME, json!({}), &[("cookie", person.cookie())])
                .await
                .0,
        );
    }
    assert_eq!(statuses, [403, 403, 403, 429]);
    // An admin's own session works; impersonated by another admin, the same admin is refused.
    let admin = staff(&app, "Ada", "admin").await;
    let other = staff(&app, "Oz", "admin").await;
    assert_eq!(
        admin_post(&app, ME, json!({}), &[("cookie", admin.cookie())])
            .await
            .0,
        200
    );
    app.db()
        .await
        .batch_execute(&format!(
            "UPDATE session SET \"impersonatedBy\" = '{}' WHERE \"userId\" = '{}'",
            other.id, admin.id
        ))
        .await
        .unwrap();
    let (status, body) = admin_post(&app, ME, json!({}), &[("cookie", admin.cookie())]).await;
    assert_eq!((status, first_code(&body)), (403, "FORBIDDEN"), "{body}");
}

const GRANT: &str = "mutation($input: GrantCreditsInput!) { grantCredits(input: $input) { balance entry { kind amount balanceAfter description } } }";

#[tokio::test]
async fn twenty_concurrent_grants_and_job_charges_keep_the_money_invariants() {
    let app = TestApp::spawn_with(|env| {
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    })
    .await;
    let person = app.user("Busy").await;
    let admin = staff(&app, "Ada", "admin").await;
    // Enough that every take-back (at most the balance) succeeds whatever the order.
    grant(&app, &person, 10_000).await;
    let grants = (0..20).map(|i| {
        let (app_url, client, cookie) = (app.url("/admin/graphql"), app.client.clone(), admin.cookie());
        let amount = if i % 4 == 3 { "-3.00" } else { "2.50" };
        let body = json!({ "query": GRANT, "variables": { "input": { "userId": person.id, "amount": amount, "reason": format!("race {i}") } } });
        tokio::spawn(async move {
            let answer = client.post(app_url).header("cookie", cookie).json(&body).send().await.unwrap().json::<Value>().await.unwrap();
            (amount, answer)
        })
    });
    let charges = (0..20).map(|i| {
        let (app_url, client, cookie) = (app.url("/graphql"), app.client.clone(), person.cookie());
        let body = json!({ "query": "mutation($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) { photoJob { id } } }", "variables": { "input": { "prompt": format!("job {i}"), "photoCount": 1 } } });
        tokio::spawn(async move {
            client.post(app_url).header("cookie", cookie).json(&body).send().await.unwrap().json::<Value>().await.unwrap()
        })
    });
    let (grants, charges) = tokio::join!(
        futures_util::future::join_all(grants),
        futures_util::future::join_all(charges)
    );
    for (amount, body) in grants.into_iter().map(Result::unwrap) {
        assert!(body.get("errors").is_none(), "{body}");
        // Each answers its own ledger entry, whatever committed around it.
        let entry = &body["data"]["grantCredits"]["entry"];
        assert_eq!(
            (entry["kind"].as_str(), entry["amount"].as_str()),
            (Some("ADJUSTMENT"), Some(amount)),
            "{body}"
        );
        assert_eq!(
            entry["balanceAfter"],
            body["data"]["grantCredits"]["balance"]
        );
    }
    let charged = charges
        .into_iter()
        .map(Result::unwrap)
        .filter(|b| b.get("errors").is_none())
        .count();
    let mut conn = app.db().await;
    assert_eq!(invariant_violations(&mut conn).await, 0);
    let (jobs, ledger, _, balance) = state(&app, &person).await;
    assert_eq!(jobs as usize, charged);
    // 1 grant + 20 adjustments + a charge per job.
    assert_eq!(ledger as usize, 1 + 20 + charged);
    assert_eq!(audit_rows(&app).await, 20);
    assert!(balance >= 0, "{balance}");
}

#[tokio::test]
async fn bff_admin_grant_role_bootstraps_the_first_admin_and_is_audited() {
    let app = TestApp::spawn().await;
    let first = app.user("First").await;
    let run = |args: &[&str]| {
        crate::cli::bff()
            .env("DATABASE_URL", &app.database_url)
            .env("USER", "ops")
            .args(args)
            .output()
            .unwrap()
    };
    let (status, _) = admin_post(&app, ME, json!({}), &[("cookie", first.cookie())]).await;
    assert_eq!(status, 403);
    let out = run(&["admin", "grant-role", "FIRST@example.com", "admin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("now has the roles [admin]"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let body = as_staff(&app, &first, ME, json!({})).await;
    assert_eq!(body["data"]["me"]["role"], "ADMIN", "{body}");
    // Again: nothing changes, nothing is audited.
    assert!(
        run(&["admin", "grant-role", "first@example.com", "admin"])
            .status
            .success()
    );
    let body = as_staff(
        &app,
        &first,
        "query($id: ID) { auditLog(targetId: $id) { nodes { actorId actorRole action before after } } }",
        json!({ "id": first.id }),
    )
    .await;
    assert_eq!(
        body["data"]["auditLog"]["nodes"],
        json!([{ "actorId": "cli:ops", "actorRole": "cli", "action": "GRANT_ROLE",
                 "before": { "roles": [] }, "after": { "roles": ["admin"] } }]),
        "{body}"
    );
    // Unknown people and bad role names change nothing.
    let out = run(&["admin", "grant-role", "nobody@example.com", "admin"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody has the email"));
    assert!(
        !run(&["admin", "grant-role", "first@example.com", "a,b"])
            .status
            .success()
    );
    assert_eq!(audit_rows(&app).await, 1);
    assert!(
        run(&["admin", "revoke-role", "first@example.com", "admin"])
            .status
            .success()
    );
    let (status, _) = admin_post(&app, ME, json!({}), &[("cookie", first.cookie())]).await;
    assert_eq!(status, 403);
    assert_eq!(audit_rows(&app).await, 2);
}
