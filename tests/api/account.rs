//! Leaving: `deleteAccount` needs a fresh session and the email typed again; a deletion — by
//! bff, by Better Auth, or by an operator's DELETE — leaves only an anonymous money trail, and
//! its clean-up outside PostgreSQL (Stripe, storage) is queued and drained, also across
//! outages.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::live::Client;
use crate::photo_jobs::{grant, invariant_violations};
use crate::stripe::{billing_env, deliver, event, paid_checkout, set_prices, subscription};
use crate::stripe_fake::FakeStripe;
use crate::support::{TestApp, TestUser, first_code};
use crate::uploads::{Store, deletions_due, uploaded};

const DELETE: &str =
    "mutation($email: String!) { deleteAccount(input: { confirmEmail: $email }) { deletedAt } }";
const JPEG: &[u8] = include_bytes!("../../src/dev/demo/sunrise.jpg");

pub(crate) async fn delete(app: &TestApp, user: &TestUser, email: &str) -> Value {
    app.query_as(user, DELETE, json!({ "email": email })).await
}

async fn user_exists(app: &TestApp, user: &TestUser) -> bool {
    use bff::db::better_auth::users;
    users::table
        .find(&user.id)
        .count()
        .get_result::<i64>(&mut app.db().await)
        .await
        .unwrap()
        == 1
}

#[tokio::test]
async fn deleting_needs_a_fresh_session_and_the_email_and_changes_nothing_otherwise() {
    let app = TestApp::spawn().await;
    let user = app.user("Leaver").await;
    let other = app.user("Stayer").await;
    grant(&app, &user, 500).await;
    // A session older than a day (Better Auth's freshAge): sign in again.
    app.db()
        .await
        .batch_execute(&format!(
            "UPDATE session SET \"createdAt\" = now() - interval '25 hours' WHERE \"userId\" = '{}'",
            user.id
        ))
        .await
        .unwrap();
    let stale = delete(&app, &user, "leaver@example.com").await;
    assert_eq!(first_code(&stale), "FRESH_SESSION_REQUIRED", "{stale}");
    assert!(user_exists(&app, &user).await);
    app.db()
        .await
        .batch_execute(&format!(
            "UPDATE session SET \"createdAt\" = now() - interval '23 hours' WHERE \"userId\" = '{}'",
            user.id
        ))
        .await
        .unwrap();
    let wrong = delete(&app, &user, "stayer@example.com").await;
    assert_eq!(first_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    assert_eq!(wrong["errors"][0]["extensions"]["field"], "confirmEmail");
    assert!(user_exists(&app, &user).await);
    let (_, anonymous) = app
        .post(DELETE, json!({ "email": "leaver@example.com" }), &[])
        .await;
    assert_eq!(first_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");

    // Case and spaces around the email do not matter.
    let done = delete(&app, &user, "  Leaver@Example.COM ").await;
    assert!(
        done["data"]["deleteAccount"]["deletedAt"].is_string(),
        "{done}"
    );
    assert!(!user_exists(&app, &user).await);
    let after = app.query_as(&user, "{ viewer { id } }", json!({})).await;
    assert_eq!(after["data"]["viewer"], Value::Null, "{after}");
    let again = delete(&app, &user, "leaver@example.com").await;
    assert_eq!(first_code(&again), "UNAUTHENTICATED", "{again}");
    let theirs = app
        .query_as(&other, "{ viewer { email } }", json!({}))
        .await;
    assert_eq!(theirs["data"]["viewer"]["email"], "stayer@example.com");
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

/// Every (table.column) of the public schema whose text contains one of `needles`.
async fn found(conn: &mut AsyncPgConnection, needles: &[&str]) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
    }
    #[derive(QueryableByName)]
    struct Hits {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let columns: Vec<Column> = diesel::sql_query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name \
         FROM information_schema.columns c JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'",
    )
    .load(conn)
    .await
    .unwrap();
    assert!(columns.len() > 100, "every column of every table");
    let patterns: Vec<String> = needles.iter().map(|n| format!("%{n}%")).collect();
    let mut out = Vec::new();
    for column in columns {
        let hits: Hits = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM \"{}\" WHERE \"{}\"::text ILIKE ANY($1)",
            column.table_name, column.column_name
        ))
        .bind::<diesel::sql_types::Array<Text>, _>(&patterns)
        .get_result(conn)
        .await
        .unwrap();
        if hits.n > 0 {
            out.push(format!("{}.{}", column.table_name, column.column_name));
        }
    }
    out
}

/// A server with photo storage and the Stripe fake (clean-up sweeps every 2 s).
pub(crate) async fn app_with_store_and_stripe() -> (TestApp, Store, FakeStripe) {
    let store = Store::start().await;
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn_with(|env| {
        store.test_env(env);
        billing_env(env, &fake);
    })
    .await;
    set_prices(&app).await;
    (app, store, fake)
}

/// Gives `user` a rich history: a subscription with a paid invoice, a credit pack partly
/// refunded, a photo job made of an upload, another upload waiting, and a verification row.
/// `tag` names files and prompts; `n` names the Stripe objects (random ids in real life).
pub(crate) async fn rich_history(
    app: &TestApp,
    fake: &FakeStripe,
    user: &TestUser,
    tag: &str,
    n: u8,
) {
    let customer = format!("cus_{n}");
    let sub = format!("sub_{n}");
    let snapshot = subscription(&sub, &customer, user, "price_pro", "active", false);
    fake.put_subscription(snapshot.clone());
    let created = event(
        &format!("evt_s_{n}"),
        "customer.subscription.created",
        1_790_000_000,
        snapshot,
    );
    assert_eq!(deliver(app, &created).await.1["outcome"], "applied");
    let invoice = json!({ "id": format!("in_{n}"), "subscription": sub, "customer": customer,
        "amount_paid": 2900, "currency": "usd",
        "lines": { "data": [{ "period": { "start": 1_790_000_000, "end": 1_792_592_000 } }] } });
    deliver(
        app,
        &event(
            &format!("evt_i_{n}"),
            "invoice.paid",
            1_790_000_001,
            invoice,
        ),
    )
    .await;
    let session = format!("cs_{n}");
    let paid = event(
        &format!("evt_c_{n}"),
        "checkout.session.completed",
        1_790_000_002,
        paid_checkout(&session, user, "MEDIUM"),
    );
    assert_eq!(deliver(app, &paid).await.1["outcome"], "applied");
    let refund = json!({ "id": format!("ch_{n}"), "object": "charge", "payment_intent": format!("pi_{session}"),
        "amount": 1000, "amount_refunded": 400, "currency": "usd" });
    assert_eq!(
        deliver(
            app,
            &event(
                &format!("evt_r_{n}"),
                "charge.refunded",
                1_790_000_003,
                refund
            )
        )
        .await
        .1["outcome"],
        "applied"
    );
    let ids = uploaded(
        app,
        user,
        &[(&format!("{tag}-holiday.jpg"), "image/jpeg", JPEG)],
    )
    .await;
    let input =
        json!({ "input": { "prompt": format!("a sunset for {tag}'s album"), "uploadIds": ids } });
    let job = app.query_as(user, "mutation($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) { photoJob { id } } }", input).await;
    assert!(job.get("errors").is_none(), "{job}");
    uploaded(
        app,
        user,
        &[(&format!("{tag}-waiting.jpg"), "image/jpeg", JPEG)],
    )
    .await;
    app.db()
        .await
        .batch_execute(&format!(
            "INSERT INTO verification (id, identifier, value, \"expiresAt\", \"createdAt\", \"updatedAt\") \
             VALUES ('v_{tag}', '{tag}@example.com', 'code-123', now() + interval '1 hour', now(), now()); \
             INSERT INTO account (id, \"accountId\", \"providerId\", \"userId\", password, \"createdAt\", \"updatedAt\") \
             VALUES ('a_{tag}', '{}', 'credential', '{}', 'hash-of-{tag}', now(), now())",
            user.id, user.id
        ))
        .await
        .unwrap();
}

/// (tombstone ids, purchases, ledger kinds) of the money trail not owned by a user.
async fn trail(conn: &mut AsyncPgConnection) -> (Vec<String>, i64, Vec<String>) {
    use bff::db::schema::{credit_accounts, credit_ledger, purchases};
    let owners: Vec<String> = credit_accounts::table
        .filter(credit_accounts::user_id.like("deleted\\_%"))
        .select(credit_accounts::user_id)
        .load(conn)
        .await
        .unwrap();
    let bought: i64 = purchases::table
        .filter(purchases::user_id.eq_any(&owners))
        .count()
        .get_result(conn)
        .await
        .unwrap();
    let kinds: Vec<String> = credit_ledger::table
        .filter(credit_ledger::user_id.eq_any(&owners))
        .order(credit_ledger::id)
        .select(credit_ledger::kind)
        .load(conn)
        .await
        .unwrap();
    (owners, bought, kinds)
}

/// Waits up to `seconds` for `check`.
pub(crate) async fn within(seconds: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..seconds * 10 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {seconds} s");
}

async fn queued(app: &TestApp) -> (i64, i64) {
    #[derive(QueryableByName)]
    struct Queue {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        cleanups: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        objects: i64,
    }
    let q: Queue = diesel::sql_query(
        "SELECT (SELECT count(*) FROM account_cleanups) AS cleanups, \
                (SELECT count(*) FROM storage_deletions) AS objects",
    )
    .get_result(&mut app.db().await)
    .await
    .unwrap();
    (q.cleanups, q.objects)
}

#[tokio::test]
async fn a_deleted_account_leaves_only_an_anonymous_money_trail_and_nothing_else_of_the_person() {
    let (app, store, fake) = app_with_store_and_stripe().await;
    let zelda = app.user("Zelda").await;
    let bystander = app.user("Bystander").await;
    rich_history(&app, &fake, &zelda, "zelda", 1).await;
    rich_history(&app, &fake, &bystander, "bystander", 2).await;
    let needles = [
        zelda.id.as_str(),
        "zelda@example.com",
        "Zelda",
        "sunset for zelda",
        "zelda-holiday.jpg",
        "zelda-waiting.jpg",
        "hash-of-zelda",
    ];
    let before = found(&mut app.db().await, &needles).await;
    for table in [
        "\"user\".email",
        "session.\"userId\"",
        "photo_jobs.prompt",
        "photo_uploads.file_name",
        "purchases.user_id",
    ] {
        let plain = table.replace('"', "");
        assert!(
            before.contains(&plain),
            "the scan finds {plain} before: {before:?}"
        );
    }
    // Each person's job photo (the copy the job checked), the upload it replaced, and an
    // upload waiting for a job.
    assert_eq!(store.objects().len(), 6);

    let done = delete(&app, &zelda, "zelda@example.com").await;
    assert!(done.get("errors").is_none(), "{done}");
    let gone = app.query_as(&zelda, "{ viewer { id } }", json!({})).await;
    assert_eq!(gone["data"]["viewer"], Value::Null);
    // Objects wait for their upload URLs to expire (a URL still valid could upload again);
    // here, as if they had: hers, and the upload the bystander's job copy replaced.
    assert_eq!(deletions_due(&app).await, 4);

    // Stripe: the subscription canceled now, the customer deleted; storage: her objects gone.
    within(20, "the clean-up", async || {
        queued(&app).await == (0, 0)
            && fake.customers_deleted() == ["cus_1"]
            && store.objects().len() == 2
    })
    .await;
    assert_eq!(fake.subscription("sub_1").unwrap()["status"], "canceled");
    assert_eq!(fake.subscription("sub_2").unwrap()["status"], "active");
    assert!(
        store.objects().iter().all(|o| o.contains(&bystander.id)),
        "{:?}",
        store.objects()
    );
    // Not even the store's metadata files name her objects any more.
    let keys = store.metadata_keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.contains(&bystander.id)), "{keys:?}");

    let mut conn = app.db().await;
    assert_eq!(
        found(&mut conn, &needles).await,
        Vec::<String>::new(),
        "nothing of Zelda is left"
    );
    let (owners, bought, kinds) = trail(&mut conn).await;
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(bought, 1);
    assert_eq!(
        kinds,
        ["PURCHASE", "PURCHASE_REFUND"],
        "payments' rows, not jobs'"
    );
    assert_eq!(invariant_violations(&mut conn).await, 0);
    // The bystander lost nothing.
    let theirs = app
        .query_as(&bystander, "{ viewer { credits { balance } photoJobs { totalCount } subscription { plan history { kind } } } }", json!({}))
        .await;
    assert_eq!(
        theirs["data"]["viewer"]["photoJobs"]["totalCount"], 1,
        "{theirs}"
    );
    assert_eq!(theirs["data"]["viewer"]["subscription"]["plan"], "PRO");
}

#[tokio::test]
async fn a_user_deleted_by_better_auth_is_cleaned_up_the_same_way_across_outages() {
    let (app, mut store, fake) = app_with_store_and_stripe().await;
    let user = app.user("Outaged").await;
    rich_history(&app, &fake, &user, "outaged", 3).await;
    // Stripe and storage are down while Better Auth (or an operator) deletes the user.
    fake.set_down(true);
    store.stop();
    {
        use bff::db::better_auth::users;
        diesel::delete(users::table.find(&user.id))
            .execute(&mut app.db().await)
            .await
            .unwrap();
    }
    let (cleanups, objects) = queued(&app).await;
    assert_eq!(
        (cleanups, objects),
        (2, 3),
        "queued by the deletion's transaction (and the upload the job's copy replaced, before)"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    #[derive(QueryableByName)]
    struct Tried {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempts: i32,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        last_error: Option<String>,
    }
    let tried: Vec<Tried> = diesel::sql_query("SELECT attempts, last_error FROM account_cleanups")
        .load(&mut app.db().await)
        .await
        .unwrap();
    assert!(
        tried
            .iter()
            .all(|t| t.attempts >= 1 && t.last_error.as_deref().is_some_and(|e| e.contains("503"))),
        "retried while Stripe is down"
    );
    assert_eq!(queued(&app).await, (2, 3), "nothing lost");
    fake.set_down(false);
    store.restart().await;
    // As if the upload URLs had expired (their deletion waits for that).
    deletions_due(&app).await;
    within(40, "the queue catching up", async || {
        queued(&app).await == (0, 0) && store.objects().is_empty()
    })
    .await;
    assert_eq!(fake.subscription("sub_3").unwrap()["status"], "canceled");
    assert_eq!(fake.customers_deleted(), ["cus_3"]);
    let mut conn = app.db().await;
    let (owners, bought, kinds) = trail(&mut conn).await;
    assert_eq!((owners.len(), bought), (1, 1));
    assert_eq!(kinds, ["PURCHASE", "PURCHASE_REFUND"]);
    assert_eq!(invariant_violations(&mut conn).await, 0);
}

#[tokio::test]
async fn deleting_closes_the_persons_live_connections_at_once() {
    // The periodic session check is slow here (60 s): only the deletion's news can be quick.
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_WS_SESSION_CHECK_MS", "60000".into());
    })
    .await;
    let user = app.user("Live").await;
    let other = app.user("Other").await;
    let credits = "subscription { creditsChanged { balance } }";
    let mut leaving = Client::signed_in(&app, &user).await;
    leaving.subscribed("1", credits, json!({})).await;
    let mut staying = Client::signed_in(&app, &other).await;
    staying.subscribed("1", credits, json!({})).await;
    let started = std::time::Instant::now();
    let done = delete(&app, &user, "live@example.com").await;
    assert!(done.get("errors").is_none(), "{done}");
    assert_eq!(leaving.closed().await.0, 4403);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    staying.send(json!({ "type": "ping" })).await;
    assert_eq!(
        staying.next().await["type"],
        "pong",
        "the other person stays"
    );
}
