//! A rolling restart behind a load balancer loses nothing: three `bff serve` replicas behind
//! HAProxy (Debian's package; checks `/readyz` every 200 ms) share one database and one Redis
//! (both private, loopback only). A steady load of dashboard queries and `createPhotoJob`
//! mutations (each with its own idempotency key, never retried by the client) runs while the
//! replicas are restarted one by one with SIGTERM (`BFF_SHUTDOWN_DELAY_MS`: `/readyz` turns
//! 503 first, requests in flight finish, new ones go elsewhere), and WebSocket subscribers to
//! `creditsChanged` reconnect through HAProxy and refetch, as docs/deployment.md recommends.
//! Then the shared rate limit is shown holding across the replicas, and falling back to each
//! replica's own bucket while Redis is stopped. The figures are printed (`--nocapture`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::live::{Client, End};
use crate::photo_jobs::{grant, invariant_violations};
use crate::shared_limits::RedisServer;
use crate::support::{SECRET, TestApp, TestUser, free_port, fresh_database};
use crate::support::{Tool, requires};

const REPLICAS: usize = 3;
const USERS: usize = 30;
const SUBSCRIBERS: usize = 6;
const WORKERS: usize = 6;
const DRAIN_MS: u64 = 1000;
const BURST: u64 = 10_000;
const PER_SECOND: u64 = 2_000;

const DASHBOARD: &str = "query Dashboard { viewer { id credits { balance freePhotosRemaining } \
    usage { metric used } photoJobs(first: 10) { totalCount nodes { id status cost } } } }";
const CREATE: &str = "mutation Create($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) \
    { photoJob { id } credits { balance } } }";
const BALANCE: &str = "query Balance { viewer { credits { balance } } }";
const GREEDY: &str = "query Greedy { viewer { photoJobs(first: 100) { totalCount \
    nodes { id status cost prompt groupName createdAt } } } }";

struct Replica {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Replica {
    fn start(&mut self, database_url: &str, redis_url: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = crate::cli::bff()
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BETTER_AUTH_SECRET", SECRET)
            .env("BETTER_AUTH_URL", "http://localhost:5173")
            .env("CORS_ALLOWED_ORIGINS", crate::support::APP_ORIGIN)
            .env("BFF_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("BFF_TRUSTED_PROXIES", "127.0.0.1")
            .env("BFF_REDIS_URL", redis_url)
            .env("BFF_RATE_LIMIT_BURST", BURST.to_string())
            .env("BFF_RATE_LIMIT_PER_SECOND", PER_SECOND.to_string())
            .env("BFF_SHUTDOWN_DELAY_MS", DRAIN_MS.to_string())
            .env("BFF_SHUTDOWN_TIMEOUT_MS", "5000")
            .env("DATABASE_POOL_SIZE", "5")
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    async fn ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let ready = client
                .get(format!("http://127.0.0.1:{}/readyz", self.port))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("replica on {} never became ready", self.port);
    }

    /// SIGTERM, and the time it took to exit.
    async fn stop(&mut self) -> Duration {
        let child = self.child.take().expect("running");
        let started = Instant::now();
        let status = crate::cli::signal_and_wait(child, "-TERM").await;
        assert!(status.success(), "replica exited with {status}");
        started.elapsed()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct HaProxy {
    child: Child,
    port: u16,
}

impl HaProxy {
    fn start(dir: &std::path::Path, replicas: &[Replica]) -> HaProxy {
        let binary = Tool::HaProxy.path();
        let port = free_port();
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, r)| format!("    server r{i} 127.0.0.1:{} check\n", r.port))
            .collect();
        // What docs/deployment.md recommends: health checks on /readyz, and a retry only of
        // requests that never reached a replica (a refused connection).
        let config = format!(
            "global\n    maxconn 2000\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    \
             timeout server 30s\n    timeout tunnel 1h\n    retries 3\n    option redispatch 1\n    \
             retry-on conn-failure\n    option forwardfor\n\
             frontend graphql\n    bind 127.0.0.1:{port}\n    default_backend bff\n\
             backend bff\n    balance roundrobin\n    option httpchk GET /readyz\n    \
             http-check expect status 200\n    default-server inter 200ms fall 1 rise 2\n{servers}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(binary)
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("haproxy.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        HaProxy { child, port }
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Counts {
    queries: AtomicUsize,
    mutations: AtomicUsize,
    failed: AtomicUsize,
}

/// One request through the balancer; `None` (and a line on stderr) when it failed.
async fn send(proxy: &TestApp, user: &TestUser, query: &str, variables: Value) -> Option<Value> {
    let response = proxy
        .client
        .post(proxy.url("/graphql"))
        .header("cookie", user.cookie())
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            eprintln!("rolling: request failed: {error}");
            return None;
        }
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != 200 || body.get("errors").is_some() {
        eprintln!("rolling: {status} {body}");
        return None;
    }
    Some(body)
}

/// The load: each worker walks over the users, reading the dashboard and, every fourth
/// request, creating a job (the users are on ENTERPRISE: no monthly quota).
async fn load(
    proxy: Arc<TestApp>,
    users: Arc<Vec<TestUser>>,
    worker: usize,
    counts: Arc<Counts>,
    created: Arc<Vec<std::sync::Mutex<Vec<String>>>>,
    stop: Arc<AtomicBool>,
) {
    let mut n = worker;
    let mut iteration = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let index = n % users.len();
        let user = &users[index];
        n += WORKERS + 1;
        iteration += 1;
        if iteration.is_multiple_of(4) {
            let key = uuid::Uuid::new_v4().to_string();
            let input = json!({ "photoCount": 1, "prompt": "rolling", "idempotencyKey": key });
            counts.mutations.fetch_add(1, Ordering::Relaxed);
            match send(&proxy, user, CREATE, json!({ "input": input })).await {
                Some(body) => {
                    let id = body["data"]["createPhotoJob"]["photoJob"]["id"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    created[index].lock().unwrap().push(id);
                }
                None => {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else {
            counts.queries.fetch_add(1, Ordering::Relaxed);
            match send(&proxy, user, DASHBOARD, json!({})).await {
                Some(body) => assert_eq!(body["data"]["viewer"]["id"], user.id.as_str()),
                None => {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// A subscriber to `creditsChanged` through the balancer: on every close it reconnects
/// (through the balancer, so to a live replica), subscribes, and refetches the balance.
/// Returns the last balance it holds and how many times it reconnected.
async fn subscriber(proxy: Arc<TestApp>, user: TestUser, stop: Arc<AtomicBool>) -> (String, usize) {
    let mut latest = String::new();
    let mut connections = 0usize;
    'connect: while !stop.load(Ordering::Relaxed) {
        let headers = [
            ("cookie", user.cookie()),
            ("origin", crate::support::APP_ORIGIN.to_owned()),
        ];
        let Ok(mut client) = Client::connect(&proxy, "graphql-transport-ws", &headers).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        client.send(json!({ "type": "connection_init" })).await;
        match client.next_within(Duration::from_secs(5)).await {
            Ok(ack) if ack["type"] == "connection_ack" => {}
            _ => continue,
        }
        client
            .subscribe(
                "credits",
                "subscription { creditsChanged { balance } }",
                json!({}),
            )
            .await;
        connections += 1;
        // The refetch the docs recommend after every (re)connection.
        let Some(body) = send(&proxy, &user, BALANCE, json!({})).await else {
            continue;
        };
        latest = body["data"]["viewer"]["credits"]["balance"]
            .as_str()
            .unwrap()
            .to_owned();
        loop {
            match client.next_within(Duration::from_millis(300)).await {
                Ok(message) if message["type"] == "next" => {
                    latest = message["payload"]["data"]["creditsChanged"]["balance"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                }
                Ok(other) => panic!("unexpected {other}"),
                Err(End::Closed(0, _)) if stop.load(Ordering::Relaxed) => break 'connect,
                Err(End::Closed(0, _)) => {}
                Err(_) => continue 'connect,
            }
        }
    }
    (latest, connections.saturating_sub(1))
}

/// Sends `GREEDY` as `user` `count` times as fast as the balancer answers; returns how many
/// were admitted and how long it took (every other answer must be 429).
async fn greedy(proxy: &TestApp, user: &TestUser, count: usize) -> (usize, Duration) {
    let started = Instant::now();
    let mut admitted = 0;
    for _ in 0..count {
        let response = proxy
            .client
            .post(proxy.url("/graphql"))
            .header("cookie", user.cookie())
            .json(&json!({ "query": GREEDY }))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => admitted += 1,
            429 => {}
            other => panic!("greedy: {other} {}", response.text().await.unwrap()),
        }
    }
    (admitted, started.elapsed())
}

async fn jobs_of(conn: &mut diesel_async::AsyncPgConnection, user_id: &str) -> i64 {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    bff::db::schema::photo_jobs::table
        .filter(bff::db::schema::photo_jobs::user_id.eq(user_id))
        .count()
        .get_result(conn)
        .await
        .unwrap()
}

fn cost_of(query: &str) -> u64 {
    let document = async_graphql::parser::parse_query(query).unwrap();
    bff::pipeline::cost::admit(
        &document,
        None,
        &async_graphql::Variables::default(),
        &bff::config::limits::Limits::default(),
        bff::pipeline::cost::Api::Viewer,
    )
    .unwrap()
    .cost
}

#[tokio::test]
async fn a_rolling_restart_behind_haproxy_loses_nothing() {
    if !requires(&[Tool::Redis, Tool::HaProxy]) {
        return;
    }
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("rolling-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let database_url = fresh_database().await;
    let mut redis = RedisServer::start();
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|i| Replica {
            port: free_port(),
            child: None,
            log: dir.join(format!("replica-{i}.log")),
        })
        .collect();
    for replica in &mut replicas {
        replica.start(&database_url, &redis.url());
    }
    for replica in &replicas {
        replica.ready().await;
    }
    let haproxy = HaProxy::start(&dir, &replicas);
    let proxy = Arc::new(TestApp::attach(
        database_url.clone(),
        std::net::SocketAddr::from(([127, 0, 0, 1], haproxy.port)),
    ));
    // HAProxy marks each replica up after two checks.
    let mut users = Vec::new();
    for i in 0..USERS {
        let user = proxy.user(&format!("Rolling {i}")).await;
        grant(&proxy, &user, 100_000).await;
        let mut conn = proxy.db().await;
        diesel_async::SimpleAsyncConnection::batch_execute(
            &mut conn,
            &format!(
                "INSERT INTO subscriptions (user_id, plan, status, current_period_start, current_period_end) \
                 VALUES ('{}', 'ENTERPRISE', 'ACTIVE', now(), now() + interval '30 days')",
                user.id
            ),
        )
        .await
        .unwrap();
        users.push(user);
    }
    let users = Arc::new(users);
    crate::support::eventually("HAProxy routes to the replicas", async || {
        send(&proxy, &users[0], BALANCE, json!({})).await.is_some()
    })
    .await;

    let stop_load = Arc::new(AtomicBool::new(false));
    let stop_subscribers = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let created: Arc<Vec<_>> = Arc::new((0..USERS).map(|_| Default::default()).collect());
    let subscribers: Vec<_> = users[..SUBSCRIBERS]
        .iter()
        .map(|user| {
            tokio::spawn(subscriber(
                proxy.clone(),
                user.clone(),
                stop_subscribers.clone(),
            ))
        })
        .collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            tokio::spawn(load(
                proxy.clone(),
                users.clone(),
                worker,
                counts.clone(),
                created.clone(),
                stop_load.clone(),
            ))
        })
        .collect();

    // Steady load first, then each replica in turn: SIGTERM, wait for it to exit, start it
    // again on its port, wait until HAProxy routes to it again.
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut stops = Vec::new();
    for replica in &mut replicas {
        stops.push(replica.stop().await);
        replica.start(&database_url, &redis.url());
        replica.ready().await;
        // Two health checks 200 ms apart, and a margin.
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_load.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let loaded_for = started.elapsed();
    // Let the last notifications arrive, then collect what each subscriber holds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_subscribers.store(true, Ordering::Relaxed);
    let mut reconnections = Vec::new();
    let mut conn = proxy.db().await;
    for (subscriber, user) in subscribers.into_iter().zip(users.iter()) {
        let (latest, reconnected) = subscriber.await.unwrap();
        let body = send(&proxy, user, BALANCE, json!({})).await.unwrap();
        assert_eq!(
            latest, body["data"]["viewer"]["credits"]["balance"],
            "a subscriber holds a stale balance after reconnecting"
        );
        reconnections.push(reconnected);
    }

    // No mutation was lost or applied twice: each user has exactly the jobs whose creation
    // was answered, and the ledger matches every balance.
    let mut created_total = 0;
    for (user, ids) in users.iter().zip(created.iter()) {
        let ids = ids.lock().unwrap().clone();
        let jobs = jobs_of(&mut conn, &user.id).await;
        assert_eq!(jobs as usize, ids.len(), "jobs of {}", user.id);
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        created_total += ids.len();
    }
    assert_eq!(invariant_violations(&mut conn).await, 0);
    let failed = counts.failed.load(Ordering::Relaxed);
    let queries = counts.queries.load(Ordering::Relaxed);
    let mutations = counts.mutations.load(Ordering::Relaxed);
    eprintln!(
        "rolling restart of {REPLICAS} replicas behind HAProxy, {:.1} s of load: {} requests ({queries} dashboard queries, \
         {mutations} createPhotoJob), {failed} failed; {created_total} jobs created, 0 applied twice; \
         replicas exited {:?} after SIGTERM (drain {DRAIN_MS} ms); {SUBSCRIBERS} subscribers reconnected {:?} times, \
         each holding the latest balance",
        loaded_for.as_secs_f64(),
        queries + mutations,
        stops
            .iter()
            .map(|d| format!("{:.2} s", d.as_secs_f64()))
            .collect::<Vec<_>>(),
        reconnections,
    );
    assert_eq!(
        failed,
        0,
        "requests failed during the rolling restart (replica logs in {})",
        dir.display()
    );
    assert!(
        reconnections.iter().all(|&n| n >= 1),
        "every subscriber was moved off a stopped replica at least once: {reconnections:?}"
    );

    // The shared limit across the replicas: one viewer spread over three replicas by
    // round robin gets one bucket.
    let cost = cost_of(GREEDY);
    let alone = &users[USERS - 1];
    let (shared, took) = greedy(&proxy, alone, 60).await;
    let ceiling = (BURST as f64 + PER_SECOND as f64 * took.as_secs_f64()) / cost as f64;
    eprintln!(
        "shared limit: a query costing {cost}, bucket {BURST} + {PER_SECOND}/s: {shared} of 60 admitted in {:.2} s \
         through 3 replicas (one bucket allows {ceiling:.1})",
        took.as_secs_f64()
    );
    assert!((shared as f64) <= ceiling + 1.0, "{shared} > {ceiling}");
    assert!(shared as u64 >= BURST / cost, "{shared}");

    // Redis stopped: every request is still answered, each replica from its own bucket.
    redis.stop();
    let other = &users[USERS - 2];
    let (apart, took) = greedy(&proxy, other, 60).await;
    eprintln!(
        "Redis stopped: {apart} of 60 admitted in {:.2} s, 0 failed (each replica's own bucket allows {:.1})",
        took.as_secs_f64(),
        (BURST as f64 + PER_SECOND as f64 * took.as_secs_f64()) / cost as f64
    );
    assert!(
        apart as f64 > ceiling + 1.0,
        "{apart}: the replicas did not fall back to their own buckets"
    );
    let mut logs = String::new();
    for replica in &replicas {
        logs.push_str(&std::fs::read_to_string(&replica.log).unwrap());
    }
    assert!(
        logs.contains("Redis is unreachable"),
        "the outage is logged"
    );
    drop(haproxy);
    let _ = std::fs::remove_dir_all(&dir);
}
