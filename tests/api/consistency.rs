//! The response cache is never stale, checked at random: two `bff serve` processes with the
//! cache on share one database with a cache-less instance. A seeded random sequence interleaves
//! reads (a random viewer, document and process) with writes from every kind of writer: the
//! viewer's mutations through either process, the photo worker's, Stripe webhooks, and plain
//! SQL on bff's tables, Better Auth's `"user"` and everyone's plans. Each read is compared with
//! the cache-less instance's answer to the same request right after it, before any other
//! write. `BFF_CONSISTENCY_SEED` replays a sequence; the seed is printed.

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use crate::stripe::{deliver, event, paid_checkout, set_prices};
use crate::stripe_fake::FakeStripe;
use crate::support::{TestApp, TestUser, fresh_database, ledger_change};

const STEPS: usize = 400;
const USERS: usize = 4;

const DOCUMENTS: &[(&str, &str)] = &[
    (
        "query ConsistencyDashboard { viewer { id name subscription { plan status } credits { balance freePhotosRemaining } \
         usage { metric used limit remaining } photoJobs(first: 20) { totalCount nodes { id status cost photoCount groupName } } } }",
        "{}",
    ),
    (
        "query ConsistencyBilling { viewer { credits { balance transactions(first: 10) { totalCount edges { node { kind amount } } } } \
         purchases { totalCount edges { node { pack status amount credits } } } } }",
        "{}",
    ),
    (
        "query ConsistencyPending($status: PhotoJobStatus) { viewer { photoJobs(first: 5, filter: { status: $status }) { totalCount nodes { id status } } } }",
        r#"{"status":"PENDING"}"#,
    ),
    (
        "query ConsistencyPlans { viewer { email name subscription { entitlements { plan monthlyPhotoQuota } } } }",
        "{}",
    ),
];

/// xorshift64*: enough randomness to choose steps, and replayable from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

async fn post(app: &TestApp, headers: &[(&str, String)], query: &str, variables: Value) -> Value {
    let (status, body) = app.post(query, variables, headers).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn cached_answers_match_fresh_executions_under_random_writes_from_every_writer() {
    bff::metrics::install();
    let seed = std::env::var("BFF_CONSISTENCY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("consistency: BFF_CONSISTENCY_SEED={seed}");
    let mut rng = Rng(seed);

    let fake = FakeStripe::start().await;
    let database_url = fresh_database().await;
    let metrics_ports = [crate::support::free_port(), crate::support::free_port()];
    let mut children = Vec::new();
    let mut processes = Vec::new();
    for port in metrics_ports {
        let metrics = format!("127.0.0.1:{port}");
        let env = [
            ("SERVICE_JWT_SECRET", crate::worker::KEY),
            ("STRIPE_SECRET_KEY", "sk_test_fake"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_test_secret_for_vectors"),
            ("STRIPE_API_BASE", fake.url.as_str()),
            ("BFF_STRIPE_SYNC_INTERVAL_SECONDS", "0"),
            ("BFF_METRICS_LISTEN", metrics.as_str()),
            // Off because 400 steps in a few seconds would spend a viewer's bucket, and a 429
            // is not what this test is about (tests/api/abuse.rs and shared_limits.rs check
            // the limiter, with the cache on).
            ("BFF_RATE_LIMIT_PER_SECOND", "0"),
        ];
        let (child, base) = crate::cli::serve_child(&database_url, &env).await;
        children.push(ChildGuard(child));
        let addr = base.trim_start_matches("http://").parse().unwrap();
        processes.push(TestApp::attach(database_url.clone(), addr));
    }
    let truth = TestApp::spawn_on(database_url.clone(), |env| {
        crate::stripe::billing_env(env, &fake);
        env.insert("SERVICE_JWT_SECRET", crate::worker::KEY.into());
        env.insert("BFF_RESPONSE_CACHE", "off".into());
        // As for the two processes above.
        env.insert("BFF_RATE_LIMIT_PER_SECOND", "0".into());
    })
    .await;
    set_prices(&truth).await;
    let mut users: Vec<TestUser> = Vec::new();
    for i in 0..USERS {
        let user = truth.user(&format!("Consistent {i}")).await;
        ledger_change(&truth, &user.id, "GRANT", 10_000, "Grant").await;
        users.push(user);
    }

    let (mut reads, mut writes, mut differences) = (0, 0, Vec::new());
    let mut counter = 0;
    for step in 0..STEPS {
        counter += 1;
        let user = &users[rng.below(USERS)];
        let process = &processes[rng.below(2)];
        let cookie = [("cookie", user.cookie())];
        if rng.below(4) < 3 {
            reads += 1;
            let (query, variables) = DOCUMENTS[rng.below(DOCUMENTS.len())];
            let variables: Value = serde_json::from_str(variables).unwrap();
            let answer = post(process, &cookie, query, variables.clone()).await;
            let fresh = post(&truth, &cookie, query, variables).await;
            if answer != fresh {
                differences.push(format!(
                    "step {step}: {query}\n  cached {answer}\n  fresh  {fresh}"
                ));
            }
            continue;
        }
        writes += 1;
        // Everyone's plans change rarely: each such write makes every cached answer old.
        match rng.below(12) {
            0..=2 => {
                let create = "mutation($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) { photoJob { id } } }";
                let input = json!({ "photoCount": 1 + rng.below(3), "prompt": "p", "groupName": format!("g{}", rng.below(3)) });
                post(process, &cookie, create, json!({ "input": input })).await;
            }
            3 => {
                let pending = post(
                    &truth,
                    &cookie,
                    DOCUMENTS[2].0,
                    json!({ "status": "PENDING" }),
                )
                .await;
                if let Some(id) = pending["data"]["viewer"]["photoJobs"]["nodes"][0]["id"].as_str()
                {
                    let cancel = "mutation($id: ID!) { cancelPhotoJob(id: $id) { id } }";
                    post(process, &cookie, cancel, json!({ "id": id })).await;
                }
            }
            4 | 5 => {
                let worker = crate::worker::service();
                let claim = "mutation { claimPhotoJobs(limit: 2) { id } }";
                let claimed = post(process, &worker, claim, json!({})).await;
                if let Some(id) = claimed["data"]["claimPhotoJobs"][0]["id"].as_str() {
                    let complete = "mutation($id: ID!) { completePhotoJob(id: $id, downloadUrl: \"https://example.com/r.jpg\") { id } }";
                    post(process, &worker, complete, json!({ "id": id })).await;
                }
            }
            6 | 7 => {
                let session = format!("cs_consistency_{counter}");
                let paid = event(
                    &format!("evt_c{counter}"),
                    "checkout.session.completed",
                    1_796_000_000,
                    paid_checkout(&session, user, "SMALL"),
                );
                let (status, body) = deliver(process, &paid).await;
                assert_eq!(status, 200, "{body}");
            }
            8 => {
                let sql = format!(
                    "UPDATE \"user\" SET name = 'Name {counter}' WHERE id = '{}'",
                    user.id
                );
                truth.db().await.batch_execute(&sql).await.unwrap();
            }
            9 | 10 => {
                let cents = 100 + rng.below(500) as i64;
                ledger_change(&truth, &user.id, "GRANT", cents, "Grant").await;
            }
            _ => {
                let sql = format!(
                    "UPDATE plans SET monthly_photo_quota = {} WHERE code = 'FREE'",
                    20 + rng.below(5)
                );
                truth.db().await.batch_execute(&sql).await.unwrap();
            }
        }
    }
    let mut hits = 0.0;
    for port in metrics_ports {
        let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        hits += crate::metrics::value(&text, "bff_response_cache_total{outcome=\"hit\"}");
    }
    eprintln!(
        "consistency: {reads} reads ({hits} answered from the two caches), {writes} writes, {} differences",
        differences.len()
    );
    assert!(
        differences.is_empty(),
        "seed {seed}:\n{}",
        differences.join("\n")
    );
    assert!(
        hits >= reads as f64 / 10.0,
        "the caches were hardly used: {hits} hits of {reads} reads"
    );
}

/// Kills a `bff serve` child when the test ends, however it ends.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
