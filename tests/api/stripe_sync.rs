//! Reconciliation with Stripe's event list: `bff stripe sync` (the real binary) and the
//! periodic run in `serve` apply the events no webhook delivered, exactly once, one process at
//! a time, against the local fake's `GET /v1/events`.

use std::process::Output;

use bff::db::schema::{purchases, stripe_events, stripe_syncs};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::metrics::{metrics_listener, scrape, value};
use crate::photo_jobs::invariant_violations;
use crate::stripe::{billing_app, deliver, event, paid_checkout};
use crate::stripe_fake::FakeStripe;
use crate::support::{TestApp, TestUser, eventually};

/// Runs `bff stripe sync` (with `args`) against `app`'s database and `fake`.
async fn sync(app: &TestApp, fake: &FakeStripe, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_bff"));
    command
        .args(["stripe", "sync"])
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .env("STRIPE_SECRET_KEY", "sk_test_fake")
        .env("STRIPE_API_BASE", &fake.url)
        .current_dir(env!("CARGO_TARGET_TMPDIR"));
    command.output().await.unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The number `bff stripe sync` printed after "recovered ".
fn recovered(output: &Output) -> usize {
    let text = stdout(output);
    let after = text.split("recovered ").nth(1).expect("a summary line");
    after.split(',').next().unwrap().parse().unwrap()
}

fn now() -> i64 {
    Utc::now().timestamp()
}

fn refund(id: &str, session: &str, refunded: i64) -> Value {
    event(
        id,
        "charge.refunded",
        now(),
        json!({ "id": format!("ch_{session}"), "object": "charge", "payment_intent": format!("pi_{session}"),
                "amount": 1000, "amount_refunded": refunded, "currency": "usd" }),
    )
}

async fn balance(app: &TestApp, user: &TestUser) -> Value {
    let body = app
        .query_as(user, "{ viewer { credits { balance } } }", json!({}))
        .await;
    body["data"]["viewer"]["credits"]["balance"].clone()
}

/// (started_at, listed_since, succeeded, listed, recovered) of every run, oldest first.
async fn runs(app: &TestApp) -> Vec<(DateTime<Utc>, DateTime<Utc>, bool, i32, i32)> {
    stripe_syncs::table
        .order(stripe_syncs::id)
        .select((
            stripe_syncs::started_at,
            stripe_syncs::listed_since,
            stripe_syncs::succeeded,
            stripe_syncs::events_listed,
            stripe_syncs::events_recovered,
        ))
        .load(&mut app.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dropped_webhook_is_recovered_by_bff_stripe_sync_once() {
    let (app, fake) = billing_app().await;
    let user = app.user("Dropped").await;
    let first = event(
        "evt_first",
        "checkout.session.completed",
        now() - 60,
        paid_checkout("cs_a", &user, "MEDIUM"),
    );
    fake.publish(&first);
    assert_eq!(deliver(&app, &first).await.0, 200);
    // Never delivered: a second pack, and a partial refund (4.00 of 10.00) of the first.
    let second = event(
        "evt_second",
        "checkout.session.completed",
        now() - 30,
        paid_checkout("cs_b", &user, "MEDIUM"),
    );
    fake.publish(&second);
    fake.publish(&refund("evt_refund", "cs_a", 400));
    // Not a type bff handles: Stripe's list does not even return it.
    fake.publish(&event(
        "evt_other",
        "customer.created",
        now(),
        json!({ "id": "cus_x" }),
    ));
    assert_eq!(balance(&app, &user).await, "25.00");

    let output = sync(&app, &fake, &[]).await;
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.contains("applied evt_second (checkout.session.completed): applied"),
        "{text}"
    );
    assert!(
        text.contains("applied evt_refund (charge.refunded): applied"),
        "{text}"
    );
    assert!(text.contains("listed 3 event(s)"), "{text}");
    assert_eq!(recovered(&output), 2, "{text}");
    // 25 + 25 − 10 (the refund's share of the first pack).
    assert_eq!(balance(&app, &user).await, "40.00");

    let again = sync(&app, &fake, &[]).await;
    assert!(again.status.success(), "{again:?}");
    assert_eq!(recovered(&again), 0, "{}", stdout(&again));
    assert_eq!(balance(&app, &user).await, "40.00");
    // A webhook arriving late for a recovered event is a duplicate.
    let (_, answer) = deliver(&app, &second).await;
    assert_eq!(answer["duplicate"], true, "{answer}");

    // The list asked for bff's types since the last successful run less the overlap.
    let listed = fake
        .requests()
        .into_iter()
        .filter(|r| r.route == "GET /v1/events")
        .collect::<Vec<_>>();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].form["limit"], "100");
    assert_eq!(
        listed[0].authorization.as_deref(),
        Some("Bearer sk_test_fake")
    );
    let runs = runs(&app).await;
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|run| run.2), "{runs:?}");
    let thirty_days = Utc::now() - chrono::Duration::days(30);
    assert!(
        (runs[0].1 - thirty_days).num_seconds().abs() < 60,
        "the first run reads 30 days"
    );
    assert_eq!(
        (runs[0].0 - runs[1].1).num_seconds(),
        600,
        "then since the last run, less 10 min"
    );
    assert_eq!(
        listed[1].form["created[gte]"],
        runs[1].1.timestamp().to_string()
    );
    assert_eq!((runs[1].3, runs[1].4), (3, 0));
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}

#[tokio::test]
async fn concurrent_syncs_take_turns_page_through_everything_and_apply_each_event_once() {
    let (app, fake) = billing_app().await;
    // 250 invoices of subscriptions bff does not know: recorded, not applied; 3 pages.
    for i in 0..250 {
        fake.publish(&event(
            &format!("evt_inv_{i:03}"),
            "invoice.paid",
            now() - 300 + i,
            json!({ "id": format!("in_{i}"), "object": "invoice", "subscription": "sub_unknown",
                    "lines": { "data": [{ "period": { "start": 1_790_000_000, "end": 1_792_592_000 } }] } }),
        ));
    }
    let outputs =
        futures_util::future::join_all((0..3).map(|_| sync(&app, &fake, &["--full"]))).await;
    for output in &outputs {
        assert!(output.status.success(), "{output:?}");
    }
    let total: usize = outputs.iter().map(recovered).sum();
    assert_eq!(total, 250, "each event applied by exactly one of them");
    let recorded: Vec<String> = stripe_events::table
        .select(stripe_events::outcome)
        .load(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 250);
    assert!(
        recorded
            .iter()
            .all(|o| o == "unknown_or_stale_subscription"),
        "{recorded:?}"
    );
    let pages = fake
        .requests()
        .iter()
        .filter(|r| r.route == "GET /v1/events")
        .count();
    assert_eq!(pages, 9, "three runs of three pages (100, 100, 50)");
    let runs = runs(&app).await;
    assert_eq!(runs.iter().map(|r| r.4).sum::<i32>(), 250);
    assert!(runs.iter().all(|r| r.2 && r.3 == 250), "{runs:?}");
}

#[tokio::test]
async fn a_failing_stripe_fails_the_run_and_the_next_one_reads_the_same_window() {
    let (app, fake) = billing_app().await;
    let user = app.user("Outage").await;
    fake.publish(&event(
        "evt_late",
        "checkout.session.completed",
        now(),
        paid_checkout("cs_late", &user, "MEDIUM"),
    ));
    fake.fail_next(500, "api_error", "Stripe is having a moment");
    let failed = sync(&app, &fake, &[]).await;
    assert!(!failed.status.success());
    let message = String::from_utf8_lossy(&failed.stderr);
    assert!(
        message.contains("the Stripe sync failed") && message.contains("500"),
        "{message}"
    );
    let no_key = tokio::process::Command::new(env!("CARGO_BIN_EXE_bff"))
        .args(["stripe", "sync"])
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .output()
        .await
        .unwrap();
    assert!(!no_key.status.success());
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("STRIPE_SECRET_KEY is not set"));

    let ok = sync(&app, &fake, &[]).await;
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(recovered(&ok), 1);
    assert_eq!(balance(&app, &user).await, "25.00");
    let runs = runs(&app).await;
    assert_eq!(runs.len(), 2);
    assert!(!runs[0].2 && runs[1].2, "{runs:?}");
    assert!(
        (runs[1].1 - runs[0].1).num_seconds().abs() < 5,
        "no successful run yet: the same 30 days"
    );
    let error: Option<String> = stripe_syncs::table
        .select(stripe_syncs::error)
        .order(stripe_syncs::id)
        .first(&mut app.db().await)
        .await
        .unwrap();
    assert!(error.unwrap().contains("500"));
}

#[tokio::test]
async fn serve_runs_the_sync_periodically_and_reports_it() {
    let fake = FakeStripe::start().await;
    let url = fake.url.clone();
    let app = TestApp::spawn_with(|env| {
        env.insert("STRIPE_SECRET_KEY", "sk_test_fake".into());
        env.insert("STRIPE_API_BASE", url);
        env.insert("BFF_STRIPE_SYNC_INTERVAL_SECONDS", "1".into());
    })
    .await;
    app.db()
        .await
        .batch_execute("UPDATE credit_packs SET stripe_price_id = 'price_' || lower(code)")
        .await
        .unwrap();
    // The recorder is installed with the metrics listener: before the sync runs.
    let addr = metrics_listener(&app).await;
    let user = app.user("Periodic").await;
    fake.publish(&event(
        "evt_periodic",
        "checkout.session.completed",
        now(),
        paid_checkout("cs_periodic", &user, "MEDIUM"),
    ));
    eventually("the periodic sync recovering the event", async || {
        purchases::table
            .filter(purchases::user_id.eq(&user.id))
            .select(purchases::status)
            .first::<String>(&mut app.db().await)
            .await
            .ok()
            == Some("COMPLETED".to_owned())
    })
    .await;
    assert_eq!(balance(&app, &user).await, "25.00");
    // It keeps running (every second here), and never applies the event twice.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let runs = runs(&app).await;
    assert!(runs.len() >= 2, "{runs:?}");
    assert_eq!(runs.iter().map(|r| r.4).sum::<i32>(), 1, "{runs:?}");
    assert_eq!(balance(&app, &user).await, "25.00");

    let text = scrape(&app, addr).await;
    let value = |name: &str| value(&text, name);
    assert!(
        value("bff_stripe_sync_events_recovered_total") >= 1.0,
        "{text}"
    );
    assert!(
        value("bff_stripe_sync_runs_total{outcome=\"ok\"}") >= 2.0,
        "{text}"
    );
    let last = value("bff_stripe_sync_last_success_timestamp_seconds");
    assert!((last - now() as f64).abs() < 60.0, "{text}");
}

#[tokio::test]
async fn a_sync_racing_the_webhooks_of_the_same_events_applies_each_once() {
    let (app, fake) = billing_app().await;
    let user = app.user("Racing").await;
    let events: Vec<Value> = (0..40)
        .map(|i| {
            event(
                &format!("evt_race_{i:02}"),
                "checkout.session.completed",
                now() - 100 + i,
                paid_checkout(&format!("cs_race_{i:02}"), &user, "MEDIUM"),
            )
        })
        .collect();
    for event in &events {
        fake.publish(event);
    }
    let webhooks = futures_util::future::join_all(events.iter().map(|e| deliver(&app, e)));
    let (answers, output) = tokio::join!(webhooks, sync(&app, &fake, &[]));
    assert!(output.status.success(), "{output:?}");
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let by_webhook = answers
        .iter()
        .filter(|(_, a)| a["outcome"] == "applied")
        .count();
    assert_eq!(by_webhook + recovered(&output), 40, "{}", stdout(&output));
    assert_eq!(balance(&app, &user).await, "1000.00");
    assert_eq!(invariant_violations(&mut app.db().await).await, 0);
}
