//! The test app: a private PostgreSQL cluster (started once, kept under `target/tmp`), a
//! template database with Better Auth's tables and our migrations, a fresh database cloned
//! from it for every test, and the real server on a loopback port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use bff::config::Config;
use bff::dev::postgres::{Cluster, Durability};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

pub mod tools;
pub use tools::{Tool, requires};

/// Better Auth's secret in `better-auth.md`'s test vectors.
pub const SECRET: &str = "probe-secret-0123456789abcdef0123456789abcdef";
/// The allowed CORS origin in tests.
pub const APP_ORIGIN: &str = "http://app.test";

struct Shared {
    admin_url: String,
    template: String,
    cluster: Cluster,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

async fn shared() -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            bff::telemetry::init_for_tests();
            let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bff-test-postgres");
            let cluster = Cluster::ensure(&root, Durability::Fast).expect("start the test cluster");
            let admin_url = cluster.url("postgres");
            let mut admin = bff::db::connect(&admin_url)
                .await
                .expect("connect to the cluster");
            drop_leftovers(&mut admin).await;
            let template = format!("bff_template_{}", std::process::id());
            bff::dev::create_database_on(&mut admin, &template, None)
                .await
                .expect("create the template database");
            let url = cluster.url(&template);
            let mut conn = bff::db::connect(&url).await.unwrap();
            bff::db::create_better_auth_tables(&mut conn).await.unwrap();
            bff::db::migrate(conn).await.expect("migrate the template");
            Shared {
                admin_url,
                template,
                cluster,
            }
        })
        .await
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

/// Drops databases that earlier runs of this suite left behind.
async fn drop_leftovers(admin: &mut AsyncPgConnection) {
    let names: Vec<Name> = diesel::sql_query(
        "SELECT datname FROM pg_database WHERE datname LIKE 'bff\\_test\\_%' OR datname LIKE 'bff\\_template\\_%'",
    )
    .load(admin)
    .await
    .unwrap_or_default();
    for name in names {
        let _ = admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                name.datname
            ))
            .await;
    }
}

/// A loopback port free at the moment (for servers started as processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh database cloned from the template; returns its URL.
pub async fn fresh_database() -> String {
    let shared = shared().await;
    let name = format!(
        "bff_test_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = bff::db::connect(&shared.admin_url).await.unwrap();
    bff::dev::create_database_on(&mut admin, &name, Some(&shared.template))
        .await
        .expect("clone the template");
    shared.cluster.url(&name)
}

/// An empty database (no tables at all); returns its URL.
pub async fn empty_database() -> String {
    let shared = shared().await;
    let name = format!(
        "bff_test_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    bff::dev::create_database(&shared.admin_url, &name)
        .await
        .unwrap();
    shared.cluster.url(&name)
}

/// Database `name` on the server whose databases are at `url_of(database)`, made afresh with
/// Better Auth's tables and our migrations (for the clusters tests start and stop themselves);
/// returns its URL.
pub async fn migrated_database(
    url_of: impl Fn(&str) -> String,
    ca: Option<&Path>,
    name: &str,
) -> String {
    let mut admin = bff::db::connect_with(&url_of("postgres"), ca)
        .await
        .unwrap();
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
    bff::dev::create_database_on(&mut admin, name, None)
        .await
        .unwrap();
    let url = url_of(name);
    let mut conn = bff::db::connect_with(&url, ca).await.unwrap();
    bff::db::create_better_auth_tables(&mut conn).await.unwrap();
    bff::db::migrate(conn).await.unwrap();
    url
}

/// A user with a seven-day session in the database at `url`.
pub async fn user_in(url: &str, ca: Option<&Path>, name: &str) -> TestUser {
    let mut conn = bff::db::connect_with(url, ca).await.unwrap();
    let id = bff::dev::seed::random_token();
    let email = format!("{}@example.com", name.to_lowercase());
    bff::dev::seed::create_user(&mut conn, &id, name, &email)
        .await
        .unwrap();
    let token = bff::dev::seed::create_session(&mut conn, &id, Utc::now() + Duration::days(7))
        .await
        .unwrap();
    TestUser { id, token }
}

/// The environment a test app is configured with; tests change entries before spawning.
pub fn base_env(database_url: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("DATABASE_URL", database_url.to_owned()),
        ("BETTER_AUTH_SECRET", SECRET.to_owned()),
        ("BETTER_AUTH_URL", "http://localhost:5173".to_owned()),
        ("CORS_ALLOWED_ORIGINS", APP_ORIGIN.to_owned()),
        ("DATABASE_POOL_TIMEOUT_MS", "2000".to_owned()),
        // No notification sender: the tests that count statements or connections see only
        // their requests. The notification tests turn it on (tests/api/notifications.rs).
        ("BFF_NOTIFY_POLL_MS", "0".to_owned()),
    ])
}

/// A user with a live session.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// Better Auth user id.
    pub id: String,
    /// Raw session token.
    pub token: String,
}

impl TestUser {
    /// The `Cookie` header value Better Auth would set.
    pub fn cookie(&self) -> String {
        format!(
            "better-auth.session_token={}",
            bff::auth::cookie_value(&self.token, SECRET)
        )
    }
}

/// The server under test.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its database.
    pub database_url: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The server's pool.
    pub pool: bff::db::DbPool,
}

impl TestApp {
    /// A server on a fresh database with the default test configuration.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A server on a fresh database, with the environment adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut HashMap<&'static str, String>)) -> TestApp {
        let database_url = fresh_database().await;
        Self::spawn_on(database_url, adjust).await
    }

    /// A server on `database_url`.
    pub async fn spawn_on(
        database_url: String,
        adjust: impl FnOnce(&mut HashMap<&'static str, String>),
    ) -> TestApp {
        let mut env = base_env(&database_url);
        adjust(&mut env);
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("valid test config");
        let pool = bff::db::pool_from_config(&config.database).unwrap();
        let app = bff::app::App::new(&config, pool.clone()).expect("the app starts");
        app.start();
        let app = bff::http::router(&app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = bff::http::server::serve_until(
                listener,
                app,
                config.server.timeouts,
                std::future::pending(),
            )
            .await;
        });
        TestApp {
            addr,
            database_url,
            client: reqwest::Client::new(),
            pool,
        }
    }

    /// A server already running at `addr` (a `bff serve` child process) on `database_url`.
    pub fn attach(database_url: String, addr: SocketAddr) -> TestApp {
        let env = base_env(&database_url);
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("valid test config");
        TestApp {
            addr,
            pool: bff::db::pool_from_config(&config.database).unwrap(),
            database_url,
            client: reqwest::Client::new(),
        }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A direct connection to the test database.
    pub async fn db(&self) -> AsyncPgConnection {
        bff::db::connect(&self.database_url).await.unwrap()
    }

    /// A user with a seven-day session.
    pub async fn user(&self, name: &str) -> TestUser {
        user_in(&self.database_url, None, name).await
    }

    /// POSTs a GraphQL request with extra headers; returns status and JSON body.
    pub async fn post(
        &self,
        query: &str,
        variables: Value,
        headers: &[(&str, String)],
    ) -> (u16, Value) {
        self.post_at("/graphql", query, variables, headers).await
    }

    /// [`TestApp::post`] to another GraphQL endpoint (`/admin/graphql`).
    pub async fn post_at(
        &self,
        path: &str,
        query: &str,
        variables: Value,
        headers: &[(&str, String)],
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url(path))
            .json(&json!({ "query": query, "variables": variables }));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Runs a query as `user` (cookie) and returns the JSON body, asserting HTTP 200.
    pub async fn query_as(&self, user: &TestUser, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .post(query, variables, &[("cookie", user.cookie())])
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The viewer's id for these headers, or None when `viewer` is null.
    pub async fn viewer_id(&self, headers: &[(&str, String)]) -> Option<String> {
        let (status, body) = self.post("{ viewer { id } }", json!({}), headers).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["viewer"]["id"].as_str().map(str::to_owned)
    }

    /// Inserts a photo job for `user_id` created at `created_at`; returns its row id.
    pub async fn insert_job(
        &self,
        user_id: &str,
        created_at: DateTime<Utc>,
        status: &str,
        group: Option<&str>,
    ) -> i64 {
        use bff::db::schema::photo_jobs;
        let mut conn = self.db().await;
        diesel::insert_into(photo_jobs::table)
            .values((
                photo_jobs::user_id.eq(user_id),
                photo_jobs::prompt.eq("Make it pop"),
                photo_jobs::photo_count.eq(2),
                photo_jobs::cost_cents.eq(60),
                photo_jobs::status.eq(status),
                photo_jobs::group_name.eq(group),
                photo_jobs::created_at.eq(created_at),
                photo_jobs::updated_at.eq(created_at),
            ))
            .returning(photo_jobs::id)
            .get_result(&mut conn)
            .await
            .unwrap()
    }
}

/// Records a balance change for `user_id` as the ledger would (kind e.g. `GRANT`), and returns
/// the balance after it; panics if the balance would go negative.
pub async fn ledger_change(
    app: &TestApp,
    user_id: &str,
    kind: &str,
    cents: i64,
    description: &str,
) -> i64 {
    use bff::db::credits::{Change, CreditAccount, CreditTransactionKind};
    let change = Change {
        user_id,
        kind: CreditTransactionKind::parse(kind).expect("a ledger kind"),
        amount_cents: cents,
        description,
        photo_job_id: None,
        purchase_id: None,
    };
    CreditAccount::apply(&mut app.db().await, &change)
        .await
        .unwrap()
        .expect("the balance covers the change")
}

/// The `extensions.code` of the first error.
pub fn first_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// Waits until `check` holds (polled every 100 ms, at most 10 s); panics naming `what`.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 10 s");
}
