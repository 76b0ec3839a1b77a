//! Load for bff's subscriptions, which `scripts/bench` runs against a `bff serve` on its dataset:
//!
//! 1. opens `LIVE_CONNECTIONS` (10,000) WebSocket connections (`graphql-transport-ws`), each
//!    signed in with the bearer of one of the sessions on standard input (rotated) and
//!    subscribed to `photoJobUpdated` (all of the viewer's jobs), and reports how many
//!    succeeded, how long it took, and bff's memory per idle connection (VmRSS of
//!    `LIVE_BFF_PID` before and after);
//! 2. changes jobs at `LIVE_RATE` (1,000) commits per second for `LIVE_SECONDS` (10), from 4
//!    connections of its own, each commit writing its send time into the job's `group_name`,
//!    and measures, for every event a subscriber receives, the time from that send (before
//!    the commit: conservative) to its arrival;
//! 3. counts bff's PostgreSQL connections (`pg_stat_activity` rows of its
//!    `LIVE_APPLICATION_NAME`, `bff` by default).
//!
//! Environment: `LIVE_URL` (ws://IP:PORT/graphql), `DATABASE_URL` (the same database, for the
//! producers), `LIVE_BFF_PID`, and the counts above. Past 20,000 connections it connects from
//! further loopback addresses (127.0.0.2, …), so ephemeral ports do not run out; its caller
//! (`scripts/bench`) raises the file-descriptor limit both processes inherit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const JOBS: &str = "subscription { photoJobUpdated { id groupName } }";
const PRODUCERS: usize = 4;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn rss_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct Stats {
    latencies: std::sync::Mutex<Vec<u32>>,
    received: AtomicU64,
}

/// Connections per loopback source address: one address has about 28,000 ephemeral ports
/// (Linux's default range), so past this the next one (127.0.0.2, …) is used.
const PER_SOURCE: usize = 20_000;

/// A TCP connection to `server` from loopback source address number `source` (127.0.0.1 + it).
async fn connect_from(
    server: std::net::SocketAddr,
    source: usize,
) -> std::io::Result<tokio::net::TcpStream> {
    let last = u8::try_from(1 + source).unwrap_or(u8::MAX);
    let from = std::net::SocketAddr::from(([127, 0, 0, last], 0));
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(from)?;
    socket.connect(server).await
}

/// One subscriber: connect (the `index`-th, from its source address), sign in, subscribe,
/// confirm it started (a ping's pong comes after the server started it), then record every
/// event's latency until the end.
async fn subscriber(
    url: String,
    index: usize,
    token: String,
    stats: Arc<Stats>,
    ready: tokio::sync::oneshot::Sender<bool>,
) {
    let mut request = url.as_str().into_client_request().expect("a ws:// URL");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    config.write_buffer_size = 0;
    let server = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|host| host.parse().ok())
        .expect("LIVE_URL is ws://IP:PORT/…");
    let Ok(stream) = connect_from(server, index / PER_SOURCE).await else {
        let _ = ready.send(false);
        return;
    };
    let Ok((mut socket, _)) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await
    else {
        let _ = ready.send(false);
        return;
    };
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    let subscribe = json!({ "type": "subscribe", "id": "1", "payload": { "query": JOBS } });
    for message in [init, subscribe, json!({ "type": "ping" })] {
        if socket
            .send(Message::Text(message.to_string().into()))
            .await
            .is_err()
        {
            let _ = ready.send(false);
            return;
        }
    }
    let mut ready = Some(ready);
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else { continue };
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match message["type"].as_str() {
            Some("pong") => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(true);
                }
            }
            Some("ping") => {
                let _ = socket
                    .send(Message::Text(json!({ "type": "pong" }).to_string().into()))
                    .await;
            }
            Some("next") => {
                let sent = message["payload"]["data"]["photoJobUpdated"]["groupName"]
                    .as_str()
                    .and_then(|g| g.parse::<u64>().ok());
                if let Some(sent) = sent {
                    let latency = micros_now().saturating_sub(sent);
                    stats
                        .latencies
                        .lock()
                        .unwrap()
                        .push(latency.min(u32::MAX as u64) as u32);
                    stats.received.fetch_add(1, Relaxed);
                }
            }
            _ => {}
        }
    }
    if let Some(ready) = ready.take() {
        let _ = ready.send(false);
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("LIVE_URL")?;
    let database_url = std::env::var("DATABASE_URL")?;
    let pid = std::env::var("LIVE_BFF_PID")?;
    let connections = env_number("LIVE_CONNECTIONS", 10_000) as usize;
    let rate = env_number("LIVE_RATE", 1_000);
    let seconds = env_number("LIVE_SECONDS", 10);
    let tokens: Vec<String> = std::io::stdin().lines().collect::<Result<Vec<_>, _>>()?;
    let tokens: Vec<String> = tokens.into_iter().filter(|t| !t.is_empty()).collect();
    if tokens.is_empty() {
        return Err("no session tokens on standard input".into());
    }

    // 1. Connections.
    let stats = Arc::new(Stats {
        latencies: std::sync::Mutex::new(Vec::new()),
        received: AtomicU64::new(0),
    });
    let rss_before = rss_kb(&pid);
    let started = Instant::now();
    let in_flight = Arc::new(Semaphore::new(200));
    let mut waiting = Vec::with_capacity(connections);
    for i in 0..connections {
        let permit = in_flight.clone().acquire_owned().await?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(subscriber(
            url.clone(),
            i,
            tokens[i % tokens.len()].clone(),
            stats.clone(),
            ready_tx,
        ));
        waiting.push(tokio::spawn(async move {
            let ok = tokio::time::timeout(Duration::from_secs(60), ready_rx)
                .await
                .is_ok_and(|r| r.unwrap_or(false));
            drop(permit);
            ok
        }));
    }
    let mut subscribed = 0usize;
    for task in waiting {
        subscribed += usize::from(task.await.unwrap_or(false));
    }
    let connect_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kb(&pid);
    println!(
        "subscribed connections: {subscribed} of {connections} in {:.1} s",
        connect_time.as_secs_f64()
    );
    println!(
        "bff VmRSS: {:.1} MB before, {:.1} MB with them idle: {:.1} KB per connection",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before)) as f64 / subscribed.max(1) as f64
    );

    // 2. Events at a steady rate: each producer changes one job per tick.
    let (client, connection) =
        tokio_postgres::connect(&database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let jobs: Vec<i64> = client
        .query(
            "SELECT DISTINCT ON (user_id) id FROM photo_jobs ORDER BY user_id, id",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // How many subscribers each event reaches: connections per user, in the rotation above.
    let fan_out = connections as f64 / tokens.len().min(connections) as f64;
    let jobs = Arc::new(jobs);
    let produced = Arc::new(AtomicU64::new(0));
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let (client, connection) =
            tokio_postgres::connect(&database_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let (jobs, produced) = (jobs.clone(), produced.clone());
        let period = Duration::from_secs_f64(PRODUCERS as f64 / rate as f64);
        producers.push(tokio::spawn(async move {
            let update = client
                .prepare("UPDATE photo_jobs SET group_name = $1 WHERE id = $2")
                .await
                .expect("prepare");
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut n = p;
            while Instant::now() < end {
                ticks.tick().await;
                let job = jobs[n % jobs.len()];
                n += PRODUCERS;
                let sent = micros_now().to_string();
                if client.execute(&update, &[&sent, &job]).await.is_ok() {
                    produced.fetch_add(1, Relaxed);
                }
            }
        }));
    }
    for producer in producers {
        producer.await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let produced = produced.load(Relaxed);
    let mut latencies = std::mem::take(&mut *stats.latencies.lock().unwrap());
    latencies.sort_unstable();
    println!(
        "events: {produced} commits in {seconds} s ({:.0}/s), {} deliveries (expected about {:.0})",
        produced as f64 / seconds as f64,
        stats.received.load(Relaxed),
        produced as f64 * fan_out
    );
    println!(
        "commit-to-client latency ms: p50 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "bff VmRSS after the events: {:.1} MB",
        rss_kb(&pid) as f64 / 1024.0
    );

    // 3. bff's connections to PostgreSQL, by the application_name it was given.
    let name = std::env::var("LIVE_APPLICATION_NAME").unwrap_or_else(|_| "bff".into());
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .await?;
    let total: i64 = row.get(0);
    println!("bff's PostgreSQL connections with {subscribed} subscribers: {total}");
    Ok(())
}
