//! Limits shared through Redis (`BFF_REDIS_URL`): two instances on one database and one
//! private Redis (started here, loopback only) admit what one would, share APQ
//! registrations, fall back to their own limits while Redis is down, and share again when it
//! is back.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::metrics::{metrics_listener, scrape, value};
use crate::support::{TestApp, TestUser, first_code, fresh_database};
use crate::support::{Tool, requires};

/// A private `redis-server` on a free loopback port, keeping nothing on disk.
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    /// Extra arguments it was started with.
    args: Vec<String>,
    /// With TLS: the directory of its CA (`ca.pem`) and certificate.
    tls: Option<std::path::PathBuf>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts one with extra `args` (`--maxmemory 2mb`, …).
    pub fn start_with(args: &[&str]) -> RedisServer {
        let port = crate::support::free_port();
        let mut server = RedisServer {
            port,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            tls: None,
            child: None,
        };
        server.restart();
        server
    }

    /// Starts one that speaks TLS only (a certificate for 127.0.0.1 from a private CA), with
    /// extra `args`.
    pub fn start_tls(args: &[&str]) -> RedisServer {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("redis-tls-{}", crate::support::free_port()));
        crate::tls::make_certificates(&dir);
        let port = crate::support::free_port();
        let mut server = RedisServer {
            port,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            tls: Some(dir),
            child: None,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:port` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA that signed a TLS server's certificate.
    pub fn ca(&self) -> std::path::PathBuf {
        self.tls.as_ref().expect("a TLS server").join("ca.pem")
    }

    /// Stops it (SIGKILL: an outage, not a shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing).
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new(Tool::Redis.path());
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(dir) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(dir.join("server.crt"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("ca.pem"))
                .args(["--tls-auth-clients", "no"]),
        };
        let child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        for _ in 0..200 {
            if let Ok(mut stream) = TcpStream::connect(addr) {
                use std::io::{Read, Write};
                // A TLS server cannot be pinged in plaintext: accepting is enough.
                if self.tls.is_some() {
                    return;
                }
                let mut answer = [0u8; 7];
                let auth = self
                    .args
                    .iter()
                    .position(|a| a == "--requirepass")
                    .and_then(|i| self.args.get(i + 1));
                let ping = match auth {
                    Some(password) => format!("AUTH {password}\r\nPING\r\n"),
                    None => "PING\r\n".to_owned(),
                };
                let skip = if auth.is_some() { 5 } else { 0 };
                let mut skipped = vec![0u8; skip];
                if stream.write_all(ping.as_bytes()).is_ok()
                    && stream.read_exact(&mut skipped).is_ok()
                    && stream.read_exact(&mut answer).is_ok()
                    && &answer == b"+PONG\r\n"
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    /// A client of its own (for the tests to look inside), on database `db`.
    pub async fn client(
        &self,
        password: Option<&str>,
        db: i64,
    ) -> redis::aio::MultiplexedConnection {
        let mut url = match password {
            Some(password) => self.url().replacen("://", &format!("://:{password}@"), 1),
            None => self.url(),
        };
        url.push_str(&format!("/{db}"));
        let client = match &self.tls {
            None => redis::Client::open(url).unwrap(),
            Some(_) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(self.ca()).unwrap()),
                },
            )
            .unwrap(),
        };
        client.get_multiplexed_async_connection().await.unwrap()
    }

    /// The keys of database `db` matching `pattern`.
    pub async fn keys(&self, password: Option<&str>, db: i64, pattern: &str) -> Vec<String> {
        let mut client = self.client(password, db).await;
        redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut client)
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two instances on one database with the abuse tests' small bucket (100 points, 1 a
/// second; `{ viewer { id } }` costs 11), sharing `redis` when given.
async fn two_instances(redis: Option<&RedisServer>) -> (TestApp, TestApp) {
    two_instances_with(redis.map(RedisServer::url), None).await
}

/// [`two_instances`] with the limits in Redis `limits` and APQ documents in Redis `documents`.
pub async fn two_instances_with(
    limits: Option<String>,
    documents: Option<String>,
) -> (TestApp, TestApp) {
    let database_url = fresh_database().await;
    let env = |env: &mut std::collections::HashMap<&'static str, String>| {
        env.insert("BFF_MAX_COST", "100".into());
        env.insert("BFF_RATE_LIMIT_BURST", "100".into());
        env.insert("BFF_RATE_LIMIT_PER_SECOND", "1".into());
        if let Some(url) = &limits {
            env.insert("BFF_REDIS_URL", url.clone());
        }
        if let Some(url) = &documents {
            env.insert("BFF_APQ_REDIS_URL", url.clone());
        }
    };
    let a = TestApp::spawn_on(database_url.clone(), env).await;
    let b = TestApp::spawn_on(database_url, env).await;
    (a, b)
}

/// Sends `{ viewer { id } }` as `user` `count` times, alternating between the instances;
/// returns how many were admitted (every other answer must be 429 RATE_LIMITED).
pub async fn admitted(instances: &[&TestApp], user: &TestUser, count: usize) -> usize {
    let mut admitted = 0;
    for i in 0..count {
        let app = instances[i % instances.len()];
        let (status, body) = app
            .post("{ viewer { id } }", json!({}), &[("cookie", user.cookie())])
            .await;
        match status {
            200 => {
                assert_eq!(body["data"]["viewer"]["id"], user.id.as_str(), "{body}");
                admitted += 1;
            }
            429 => assert_eq!(first_code(&body), "RATE_LIMITED", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    admitted
}

#[tokio::test]
async fn a_rate_limit_holds_across_instances_sharing_redis() {
    if !requires(&[Tool::Redis]) {
        return;
    }
    // Without Redis each instance has its own bucket: two admit twice what one would.
    let (a, b) = two_instances(None).await;
    let alice = a.user("Alice").await;
    let apart = admitted(&[&a, &b], &alice, 24).await;
    assert!((18..=20).contains(&apart), "{apart}");

    // Sharing Redis they admit what one instance would: 100 points / 11, plus at most one
    // point refilled a second while the loop runs.
    let redis = RedisServer::start();
    let (a, b) = two_instances(Some(&redis)).await;
    let bob = a.user("Bob").await;
    let shared = admitted(&[&a, &b], &bob, 24).await;
    assert!((9..=10).contains(&shared), "{shared}");
    // Another viewer has a bucket of their own.
    let carol = a.user("Carol").await;
    assert_eq!(admitted(&[&b, &a], &carol, 4).await, 4);
}

#[tokio::test]
async fn an_apq_hash_registered_on_one_instance_runs_on_another() {
    if !requires(&[Tool::Redis]) {
        return;
    }
    let limits = RedisServer::start();
    let documents = RedisServer::start();
    let (a, b) = two_instances_with(Some(limits.url()), Some(documents.url())).await;
    let (apart, _) = two_instances(None).await;
    let user = a.user("Persisted").await;
    let query = "query SharedHash { viewer { id } }";
    let hash = bff::pipeline::documents::sha256_hex(query);
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let send = async |app: &TestApp, body: Value| -> Value {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("cookie", user.cookie())
            .json(&body)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    };
    let hash_only = json!({ "extensions": extensions });
    assert_eq!(
        first_code(&send(&b, hash_only.clone()).await),
        "PERSISTED_QUERY_NOT_FOUND"
    );
    let registered = send(&a, json!({ "query": query, "extensions": extensions })).await;
    assert_eq!(registered["data"]["viewer"]["id"], user.id.as_str());
    let elsewhere = send(&b, hash_only.clone()).await;
    assert_eq!(
        elsewhere["data"]["viewer"]["id"],
        user.id.as_str(),
        "{elsewhere}"
    );
    // An instance that does not share Redis still has to be told.
    assert_eq!(
        first_code(&send(&apart, hash_only).await),
        "PERSISTED_QUERY_NOT_FOUND"
    );
    // The document is in the documents' Redis, never among the limits.
    assert_eq!(
        documents.keys(None, 0, "*apq:*").await,
        [format!("bff:apq:{hash}")]
    );
    assert!(limits.keys(None, 0, "*apq:*").await.is_empty());
}

#[tokio::test]
async fn instances_use_their_own_limits_while_redis_is_down_and_share_again_after() {
    if !requires(&[Tool::Redis]) {
        return;
    }
    let mut redis = RedisServer::start();
    let (a, b) = two_instances(Some(&redis)).await;
    let metrics = metrics_listener(&a).await;
    let before = value(
        &scrape(&a, metrics).await,
        "bff_redis_fallbacks_total{limit=\"rate\"}",
    );

    redis.stop();
    // Every request is still answered, and the limit still holds, per instance: each admits
    // its own bucket's 9.
    let dave = a.user("Dave").await;
    let started = std::time::Instant::now();
    let alone = admitted(&[&a], &dave, 12).await;
    assert!((9..=10).contains(&alone), "{alone}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "requests waited on the dead Redis: {:?}",
        started.elapsed()
    );
    let after = value(
        &scrape(&a, metrics).await,
        "bff_redis_fallbacks_total{limit=\"rate\"}",
    );
    assert!(after >= before + 12.0, "{before} → {after}");

    // Back (empty): after the retry interval the instances share buckets again.
    redis.restart();
    tokio::time::sleep(bff::redis::RETRY_AFTER + Duration::from_millis(200)).await;
    let erin = a.user("Erin").await;
    // One request each to notice Redis is back, then one shared bucket.
    let shared = admitted(&[&a, &b], &erin, 24).await;
    assert!((9..=11).contains(&shared), "{shared}");
}

#[tokio::test]
async fn bff_check_reports_whether_the_shared_redis_answers() {
    if !requires(&[Tool::Redis]) {
        return;
    }
    let mut redis = RedisServer::start();
    let database_url = fresh_database().await;
    let url = redis.url();
    let (_, report) = crate::cli::check(&database_url, &[("BFF_REDIS_URL", url.as_str())]);
    assert!(
        report.contains(&format!(
            "ok    redis          redis://127.0.0.1:{}/0 answers",
            redis.port
        )),
        "{report}"
    );
    redis.stop();
    let (_, report) = crate::cli::check(&database_url, &[("BFF_REDIS_URL", url.as_str())]);
    assert!(
        report.contains("warn  redis") && report.contains("each instance uses its own state"),
        "{report}"
    );
    // A Redis that may evict any key would give a throttled client a full bucket.
    let evicting = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let url = evicting.url();
    let (_, report) = crate::cli::check(&database_url, &[("BFF_REDIS_URL", url.as_str())]);
    assert!(
        report.contains("warn  redis")
            && report.contains("allkeys-lru")
            && report.contains("noeviction"),
        "{report}"
    );
}

#[tokio::test]
async fn the_export_limit_holds_across_instances_sharing_redis() {
    if !requires(&[Tool::Redis]) {
        return;
    }
    let redis = RedisServer::start();
    let (a, b) = two_instances(Some(&redis)).await;
    let user = a.user("Exporter").await;
    let export = async |app: &TestApp| {
        let response = app
            .client
            .get(app.url("/account/export"))
            .header("cookie", user.cookie())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").cloned();
        let _ = response.bytes().await;
        (status, retry_after)
    };
    // Three at once (two on one instance, one on the other), then the fourth anywhere waits.
    for app in [&a, &b, &a] {
        assert_eq!(export(app).await.0, 200);
    }
    let (status, retry_after) = export(&b).await;
    assert_eq!(status, 429);
    let wait: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}
