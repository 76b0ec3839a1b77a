//! The Redis client (the `redis` crate): `rediss://` with `AUTH` and `SELECT` against a TLS-only
//! `redis-server` started here, replies that broke the hand-written client, and APQ
//! registrations that are paid for before anything is stored, in a Redis of their own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::shared_limits::{RedisServer, admitted};
use crate::support::{TestApp, first_code, fresh_database};
use crate::support::{Tool, requires};

/// Two instances on one database with the small bucket (100 points, 1 a second), their
/// limits in `url`, trusting `ca`.
async fn two_instances(url: &str, ca: Option<&std::path::Path>) -> (TestApp, TestApp) {
    let database_url = fresh_database().await;
    let env = |env: &mut std::collections::HashMap<&'static str, String>| {
        env.insert("BFF_MAX_COST", "100".into());
        env.insert("BFF_RATE_LIMIT_BURST", "100".into());
        env.insert("BFF_RATE_LIMIT_PER_SECOND", "1".into());
        env.insert("BFF_REDIS_URL", url.to_owned());
        if let Some(ca) = ca {
            env.insert("BFF_REDIS_CA_CERT", ca.display().to_string());
        }
    };
    let a = TestApp::spawn_on(database_url.clone(), env).await;
    let b = TestApp::spawn_on(database_url, env).await;
    (a, b)
}

#[tokio::test]
async fn limits_are_shared_through_a_tls_redis_with_a_password_and_a_database() {
    if !requires(&[Tool::Redis, Tool::OpenSsl]) {
        return;
    }
    let redis = RedisServer::start_tls(&["--requirepass", "s3cret"]);
    let url = redis
        .url()
        .replacen("://", "://:s3cret@", 1)
        .replace(&format!("{}", redis.port), &format!("{}/3", redis.port));
    assert!(url.starts_with("rediss://:s3cret@127.0.0.1:"), "{url}");
    let (a, b) = two_instances(&url, Some(&redis.ca())).await;
    let alice = a.user("Alice").await;
    // One bucket for both: what one instance alone would admit (100 / 11).
    let shared = admitted(&[&a, &b], &alice, 24).await;
    assert!((9..=10).contains(&shared), "{shared}");
    // The bucket is in database 3, reached over TLS with the password.
    assert_eq!(
        redis.keys(Some("s3cret"), 3, "*").await,
        [format!("bff:rate:v:{}", alice.id)]
    );
    assert!(redis.keys(Some("s3cret"), 0, "*").await.is_empty());

    // The server's certificate is checked: without its CA the instances cannot use it and
    // each keeps its own bucket; bff check says why.
    let (c, d) = two_instances(&url, None).await;
    let bob = c.user("Bob").await;
    let apart = admitted(&[&c, &d], &bob, 24).await;
    assert!((18..=20).contains(&apart), "{apart}");
    let database_url = fresh_database().await;
    let (_, report) = crate::cli::check(&database_url, &[("BFF_REDIS_URL", url.as_str())]);
    assert!(
        report.contains("warn  redis") && report.contains("certificate"),
        "{report}"
    );
    let ca = redis.ca().display().to_string();
    let (_, report) = crate::cli::check(
        &database_url,
        &[("BFF_REDIS_URL", url.as_str()), ("BFF_REDIS_CA_CERT", &ca)],
    );
    assert!(
        report.contains("ok    redis          rediss://127.0.0.1:"),
        "{report}"
    );
}

/// A server that speaks just enough RESP to be connected to, then answers each `EVALSHA` with
/// the next of `replies` (the last one forever), counting the connections made.
async fn scripted_redis(replies: Vec<Vec<u8>>) -> (u16, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let replies = Arc::new(Mutex::new(replies));
    let connections = Arc::new(Mutex::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            *counted.lock().unwrap() += 1;
            let replies = replies.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                loop {
                    // A command: *<n>, then n bulk strings.
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let n: usize = line.trim()[1..].parse().unwrap();
                    let mut words = Vec::new();
                    for _ in 0..n {
                        let mut length = String::new();
                        read.read_line(&mut length).await.unwrap();
                        let length: usize = length.trim()[1..].parse().unwrap();
                        let mut word = vec![0; length + 2];
                        read.read_exact(&mut word).await.unwrap();
                        word.truncate(length);
                        words.push(String::from_utf8_lossy(&word).to_uppercase());
                    }
                    let reply = match words[0].as_str() {
                        "EVALSHA" | "EVAL" => {
                            let mut replies = replies.lock().unwrap();
                            if replies.len() > 1 {
                                replies.remove(0)
                            } else {
                                replies[0].clone()
                            }
                        }
                        _ => b"+OK\r\n".to_vec(),
                    };
                    if write.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, connections)
}

#[tokio::test]
async fn replies_that_broke_the_hand_written_client_are_survived() {
    // A 2,000-item array (the old client read 1,024 and left the rest for the next command),
    // a reply starting with a non-ASCII byte (the old client panicked), then a refusal.
    let mut long = b"*2000\r\n".to_vec();
    for _ in 0..2000 {
        long.extend_from_slice(b":1\r\n");
    }
    let (port, connections) = scripted_redis(vec![
        long,
        "é\r\n".as_bytes().to_vec(),
        b"*2\r\n:0\r\n:5000\r\n".to_vec(),
    ])
    .await;
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_REDIS_URL", format!("redis://127.0.0.1:{port}"));
        env.insert("BFF_REDIS_TIMEOUT_MS", "1000".into());
    })
    .await;
    let user = app.user("Scripted").await;
    let cookie = [("cookie", user.cookie())];
    // Neither answer is a bucket's: each request is decided by the instance's own bucket.
    for _ in 0..2 {
        let (status, body) = app.post("{ viewer { id } }", json!({}), &cookie).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["viewer"]["id"], user.id.as_str());
    }
    // The next command reads its own reply, not what was left of another: Redis refuses.
    tokio::time::sleep(bff::redis::RETRY_AFTER + Duration::from_millis(100)).await;
    let (status, body) = app.post("{ viewer { id } }", json!({}), &cookie).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(first_code(&body), "RATE_LIMITED");
    assert!(*connections.lock().unwrap() >= 1);
}

#[tokio::test]
async fn a_flood_of_apq_registrations_is_charged_and_cannot_evict_the_limits() {
    if !requires(&[Tool::Redis]) {
        return;
    }
    // The limits' Redis never evicts; the documents' Redis is small and evicts as it likes.
    let limits =
        RedisServer::start_with(&["--maxmemory", "16mb", "--maxmemory-policy", "noeviction"]);
    let documents =
        RedisServer::start_with(&["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]);
    let (limits_url, documents_url) = (limits.url(), documents.url());
    // The default bucket (10,000 points, 200 a second): the finding's. Redis gets 5 s to
    // answer, not the default: in a loaded test run a command can take longer, and the
    // fall-back to this process's own buckets while Redis is slow (tested in shared_limits)
    // would admit the flood twice, which is not what this test is about.
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_REDIS_URL", limits_url);
        env.insert("BFF_APQ_REDIS_URL", documents_url);
        env.insert("BFF_REDIS_TIMEOUT_MS", "5000".into());
    })
    .await;
    let padding = "x".repeat(8 * 1024);
    let started = std::time::Instant::now();
    let flood = futures_util::stream::iter(0..10_000)
        .map(|i| {
            let query = format!("{{ __typename }} # {i} {padding}");
            let hash = bff::pipeline::documents::sha256_hex(&query);
            let body = json!({
                "query": query,
                "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } },
            });
            let app = &app;
            async move {
                let response = app
                    .client
                    .post(app.url("/graphql"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16()
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<u16>>()
        .await;
    let ok = flood.iter().filter(|s| **s == 200).count();
    let limited = flood.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + limited, 10_000, "{:?}", &flood[..20]);
    // 8 KB costs 82 points to register: the bucket pays for about 120 of them (plus what
    // refills while the flood runs), not 10,000.
    assert!(ok < 1_000, "{ok} registrations admitted");
    // Stored: at most the client's registrations (100 at once, then one each 36 s).
    let refilled = (started.elapsed().as_secs() / 36) as usize + 1;
    let stored = documents.keys(None, 0, "bff:apq:*").await.len();
    println!(
        "APQ flood: 10,000 distinct 8 KB registrations, {ok} admitted, {limited} refused 429, {stored} stored"
    );
    assert!(
        (1..=100 + refilled).contains(&stored),
        "{stored} documents stored in {:?}",
        started.elapsed()
    );
    // Nothing of it in the limits' Redis, whose buckets are all there: the flooder's own is
    // as empty as the flood left it (its theoretical arrival time some 50 s ahead: 10,000
    // points at 200 a second), not evicted into a full one.
    assert!(limits.keys(None, 0, "bff:apq:*").await.is_empty());
    assert_eq!(
        limits.keys(None, 0, "bff:rate:a:*").await,
        ["bff:rate:a:127.0.0.1"]
    );
    let mut client = limits.client(None, 0).await;
    let (tat, (seconds, micros)): (String, (i64, i64)) = redis::pipe()
        .get("bff:rate:a:127.0.0.1")
        .cmd("TIME")
        .query_async(&mut client)
        .await
        .unwrap();
    let ahead = tat.parse::<f64>().unwrap() / 1e6 - (seconds as f64 + micros as f64 / 1e6);
    assert!(
        ahead > 40.0,
        "the flooder's bucket is {ahead:.1} s from full"
    );
}
