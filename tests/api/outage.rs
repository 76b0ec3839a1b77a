//! PostgreSQL restarts and outages, against a private cluster of their own (the tests stop it):
//! broken pooled connections are replaced, requests fail fast and masked while the database
//! is down, `/readyz` says 503, and service resumes within a second or two. And the statement
//! timeout frees a connection that waits on a lock.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bff::dev::postgres::{Cluster, Durability};
use diesel_async::SimpleAsyncConnection;
use serde_json::json;
use tokio::sync::Mutex;

use crate::support::{TestApp, TestUser, first_code, ledger_change, migrated_database, user_in};

/// The outage cluster, one test at a time (they stop and start it).
static CLUSTER: Mutex<Option<Cluster>> = Mutex::const_new(None);

async fn database(cluster: &Cluster) -> (String, TestUser) {
    let name = format!("bff_outage_{}", std::process::id());
    let url = migrated_database(|db| cluster.url(db), None, &name).await;
    let user = user_in(&url, None, "Steady").await;
    (url, user)
}

/// One request's fate.
struct Outcome {
    started: Instant,
    took: Duration,
    ok: bool,
}

/// `{ viewer { id } }` as `user`; `Ok` only when it names the user. A failure must be the
/// masked transient error (retry after a second), never a hang or a leaked database message.
async fn viewer(app: &TestApp, user: &TestUser) -> Outcome {
    let started = Instant::now();
    let (status, body) = app
        .post("{ viewer { id } }", json!({}), &[("cookie", user.cookie())])
        .await;
    let ok = status == 200 && body["data"]["viewer"]["id"] == user.id.as_str();
    if !ok {
        assert_eq!(first_code(&body), "SERVICE_UNAVAILABLE", "{status} {body}");
        assert_eq!(
            body["errors"][0]["message"],
            bff::error::UNAVAILABLE_MESSAGE,
            "{body}"
        );
    }
    Outcome {
        started,
        took: started.elapsed(),
        ok,
    }
}

/// Sends requests from `clients` loops until `until`; every outcome.
async fn stream(
    app: &Arc<TestApp>,
    user: &TestUser,
    clients: usize,
    until: Instant,
) -> Vec<Outcome> {
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (app, user) = (app.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            while Instant::now() < until {
                outcomes.push(viewer(&app, &user).await);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            outcomes
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_by_key(|o| o.started);
    all
}

/// Time from `from` to the start of the first success that started after it (and after which
/// nothing failed).
fn recovery(outcomes: &[Outcome], from: Instant) -> Option<Duration> {
    let last_failure = outcomes.iter().filter(|o| !o.ok).map(|o| o.started).max();
    outcomes
        .iter()
        .filter(|o| o.ok && o.started >= from && last_failure.is_none_or(|f| o.started > f))
        .map(|o| o.started.duration_since(from))
        .next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_survive_a_database_restart_and_an_outage_and_recover_within_two_seconds() {
    let mut guard = CLUSTER.lock().await;
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bff-outage-postgres");
    let cluster = guard.get_or_insert_with(|| {
        Cluster::ensure(&root, Durability::Fast).expect("start the outage cluster")
    });
    let (url, user) = database(cluster).await;
    let app = Arc::new(
        TestApp::spawn_on(url, |env| {
            env.insert("DATABASE_POOL_TIMEOUT_MS", "2000".into());
            // Failing fast, 4 clients loop faster than an address's rate limit allows (while
            // the database is down, nobody can be identified, so the address pays).
            env.insert("BFF_RATE_LIMIT_PER_SECOND", "0".into());
        })
        .await,
    );
    let pool_timeout = Duration::from_millis(2000);
    assert!(viewer(&app, &user).await.ok);

    // 1. `pg_ctl restart -m fast` while 4 clients send requests: every pooled connection dies.
    let until = Instant::now() + Duration::from_secs(4);
    let requests = {
        let app = app.clone();
        let user = user.clone();
        tokio::spawn(async move { stream(&app, &user, 4, until).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let restart_began = Instant::now();
    let cluster_ref: &Cluster = cluster;
    tokio::task::block_in_place(|| cluster_ref.pg_ctl_fast("restart")).unwrap();
    let restarted = Instant::now();
    let outcomes = requests.await.unwrap();
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    let slowest = outcomes.iter().map(|o| o.took).max().unwrap();
    let recovered = recovery(&outcomes, restarted).expect("requests succeed after the restart");
    println!(
        "restart: {} requests, {failed} failed, restart took {:?}, first success {:?} after it, slowest request {:?}",
        outcomes.len(),
        restarted - restart_began,
        recovered,
        slowest
    );
    assert!(
        recovered < Duration::from_secs(2),
        "recovery took {recovered:?}"
    );
    assert!(
        slowest < pool_timeout + Duration::from_secs(1),
        "a request hung: {slowest:?}"
    );
    assert!(outcomes.last().unwrap().ok);

    // 2. Stopped for 3 seconds: requests fail fast, /readyz answers 503.
    tokio::task::block_in_place(|| cluster_ref.pg_ctl_fast("stop")).unwrap();
    let stopped = Instant::now();
    let mut down = Vec::new();
    while stopped.elapsed() < Duration::from_secs(3) {
        down.push(viewer(&app, &user).await);
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        down.iter().all(|o| !o.ok),
        "a request succeeded with the database down"
    );
    let slowest_down = down.iter().map(|o| o.took).max().unwrap();
    assert!(
        slowest_down < pool_timeout,
        "a request waited {slowest_down:?} while down"
    );
    // A WebSocket signing in meanwhile is told to come back (1013), not that it is forbidden.
    let mut socket = crate::live::Client::connect(&app, "graphql-transport-ws", &[])
        .await
        .unwrap();
    socket
        .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", user.token) } }))
        .await;
    match socket.next_within(Duration::from_secs(10)).await {
        Err(crate::live::End::Closed(code, reason)) => {
            assert_eq!(code, 1013, "{reason}");
        }
        other => panic!("connection_init with the database down answered {other:?}"),
    }

    tokio::task::block_in_place(|| cluster_ref.start()).unwrap();
    let started = Instant::now();
    let mut after = Vec::new();
    while started.elapsed() < Duration::from_secs(3) {
        after.push(viewer(&app, &user).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let back = recovery(&after, started).expect("requests succeed once the database is back");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    println!(
        "outage: {} requests while down for 3 s, all failed, slowest {:?}; first success {:?} after the start",
        down.len(),
        slowest_down,
        back
    );
    assert!(back < Duration::from_secs(2), "recovery took {back:?}");
}

#[tokio::test]
async fn the_statement_timeout_frees_a_connection_stuck_on_a_lock() {
    let app = TestApp::spawn_with(|env| {
        env.insert("DATABASE_STATEMENT_TIMEOUT_MS", "300".into());
        env.insert("DATABASE_POOL_SIZE", "1".into());
    })
    .await;
    let user = app.user("Blocked").await;
    ledger_change(&app, &user.id, "GRANT", 1000, "Grant").await;
    // Another session holds the account's row lock and does not let go.
    let mut holder = app.db().await;
    holder.batch_execute("BEGIN").await.unwrap();
    holder
        .batch_execute(&format!(
            "SELECT 1 FROM credit_accounts WHERE user_id = '{}' FOR UPDATE",
            user.id
        ))
        .await
        .unwrap();
    let errors = |text: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(r#"bff_db_errors_total{kind="transient"} "#)?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    let before = errors(&bff::metrics::install().render());
    let started = Instant::now();
    let (status, body) = app
        .post(
            r#"mutation { createPhotoJob(input: { prompt: "Wait", photoCount: 1 }) { photoJob { id } } }"#,
            json!({}),
            &[("cookie", user.cookie())],
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    // The lock wait past statement_timeout is transient: the client is told to retry.
    assert_eq!(first_code(&body), "SERVICE_UNAVAILABLE", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 1, "{body}");
    assert!(
        !body.to_string().contains("statement timeout"),
        "leaked: {body}"
    );
    assert!(took < Duration::from_secs(2), "the statement ran {took:?}");
    let text = bff::metrics::install().render();
    assert!(
        errors(&text) > before,
        "the failed statement is counted: {text}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    // The pool's only connection serves the next request, and nothing was created.
    let jobs = app
        .query_as(&user, "{ viewer { photoJobs { totalCount } } }", json!({}))
        .await;
    assert_eq!(
        jobs["data"]["viewer"]["photoJobs"]["totalCount"], 0,
        "{jobs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_caught_up_after_a_database_restart() {
    use crate::live::{Client, JOBS};
    let mut guard = CLUSTER.lock().await;
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bff-outage-postgres");
    let cluster = guard.get_or_insert_with(|| {
        Cluster::ensure(&root, Durability::Fast).expect("start the outage cluster")
    });
    let (url, user) = database(cluster).await;
    let app = TestApp::spawn_on(url, |env| {
        env.insert("BFF_RATE_LIMIT_PER_SECOND", "0".into());
    })
    .await;
    let mut client = Client::signed_in(&app, &user).await;
    client.subscribed("jobs", JOBS, json!({})).await;
    client
        .subscribed(
            "credits",
            "subscription { creditsChanged { balance } }",
            json!({}),
        )
        .await;
    ledger_change(&app, &user.id, "GRANT", 700, "Before").await;
    loop {
        let event = client.next().await;
        if event["payload"]["data"]["creditsChanged"]["balance"] == "7.00" {
            break;
        }
    }
    // Whatever else that change told has arrived; from here on only the catch-up speaks.
    while client.next_within(Duration::from_millis(700)).await.is_ok() {}

    let cluster_ref = &*cluster;
    tokio::task::block_in_place(|| cluster_ref.pg_ctl_fast("restart")).unwrap();
    let restarted = Instant::now();
    // Caught up without any change: the current account once the process listens again.
    let event = client.next().await;
    assert_eq!(event["id"], "credits", "{event}");
    assert_eq!(
        event["payload"]["data"]["creditsChanged"]["balance"],
        "7.00"
    );
    let caught_up = restarted.elapsed();

    // And changes after the restart are delivered again.
    let mut created = None;
    for _ in 0..50 {
        let (status, body) = app
            .post(
                "mutation($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) { photoJob { id } } }",
                json!({ "input": { "prompt": "After the restart", "photoCount": 1, "groupName": "After" } }),
                &[("cookie", user.cookie())],
            )
            .await;
        if status == 200 && body.get("errors").is_none() {
            created = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        created.is_some(),
        "the job could be created after the restart"
    );
    loop {
        let event = client.next().await;
        if event["payload"]["data"]["photoJobUpdated"]["groupName"] == "After" {
            break;
        }
    }
    eprintln!("listening again and caught up {caught_up:?} after the restart");
}
