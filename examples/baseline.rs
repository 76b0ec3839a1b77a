//! The hand-written server `scripts/bench` measures bff against: axum and tokio-postgres, no
//! GraphQL and no ORM, serving the answer to the dashboard query of docs/benchmarks.md (the same JSON as
//! bff's, which the bench checks before it measures) from the same tables with the least SQL:
//!
//! - `POST /dashboard`: the session, user, subscription, plans, credit account and usage (photos
//!   in the window, storage kept) in one
//!   statement, then the ledger page and the filtered job page (its count as a subquery)
//!   pipelined on the same connection: 3 statements in 2 round trips.
//! - `POST /dashboard1`: the same answer from one statement that builds the whole JSON in
//!   PostgreSQL (`json_build_object`), which the server passes through as text: the fastest a
//!   hand-written server gets, 1 statement in 1 round trip.
//! - `POST /viewer`: the session lookup alone, the answer to `{ viewer { id } }`.
//!
//! It checks the session cookie's signature as bff does, reads and ignores the request body,
//! and holds one pooled connection per request (`DATABASE_POOL_SIZE`, no health check).
//! Environment: `DATABASE_URL` (add `sslmode=disable` for a local server), `BETTER_AUTH_SECRET`,
//! `BASELINE_LISTEN` (127.0.0.1:8090), `DATABASE_POOL_SIZE` (5), `FREE_PHOTO_ALLOWANCE` (3),
//! `BETTER_AUTH_SESSION_COOKIE` (better-auth.session_token).
//!
//! Run: `cargo run --release --example baseline`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_postgres::{Client, NoTls, Statement};

/// `timestamptz` as microseconds since the epoch (exact: `extract` is numeric).
macro_rules! micros {
    ($column:literal) => {
        concat!("(extract(epoch FROM ", $column, ") * 1000000)::int8")
    };
}

/// The session's user, subscription, plan (`e`), credit account and usage window (`win`), as
/// both dashboard statements read them.
macro_rules! viewer_from {
    () => {
        "
     FROM session s
     JOIN \"user\" u ON u.id = s.\"userId\"
     LEFT JOIN subscriptions sub ON sub.user_id = u.id
     LEFT JOIN credit_accounts ca ON ca.user_id = u.id
     CROSS JOIN LATERAL (SELECT sub.status IN ('ACTIVE', 'TRIALING', 'PAST_DUE') AS good) g
     JOIN plans e ON e.code = CASE WHEN g.good THEN sub.plan ELSE 'FREE' END
     CROSS JOIN LATERAL (SELECT
         CASE WHEN g.good AND sub.current_period_start <= now() AND now() < sub.current_period_end
              THEN sub.current_period_start
              ELSE date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END AS start,
         CASE WHEN g.good AND sub.current_period_start <= now() AND now() < sub.current_period_end
              THEN sub.current_period_end
              ELSE (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
         END AS end) win
"
    };
}

const LOOKUP: &str = concat!(
    "SELECT u.id, u.name, u.email,
       COALESCE(sub.plan, 'FREE'), COALESCE(sub.status, 'ACTIVE'), ",
    micros!("sub.current_period_end"),
    ", COALESCE(sub.cancel_at_period_end, false),
       e.monthly_photo_quota, e.price_per_photo_cents, e.max_photos_per_job,
       COALESCE(ca.balance_cents, 0), COALESCE(ca.free_photos_used, 0), ",
    micros!("win.start"),
    ", ",
    micros!("win.end"),
    ", COALESCE((SELECT c.count FROM usage_counters c
                  WHERE c.user_id = u.id AND c.metric = 'PHOTOS' AND c.window_start = win.start), 0),
       e.storage_bytes_limit,
       COALESCE((SELECT sum(pu.byte_size) FROM photo_uploads pu WHERE pu.user_id = u.id), 0)::int8",
    viewer_from!(),
    " WHERE s.token = $1 AND s.\"expiresAt\" > now()"
);

const SESSION: &str = "SELECT s.\"userId\" FROM session s JOIN \"user\" u ON u.id = s.\"userId\"
     WHERE s.token = $1 AND s.\"expiresAt\" > now()";

const LEDGER: &str = concat!(
    "SELECT kind, amount_cents, balance_after_cents, description, ",
    micros!("created_at"),
    " FROM credit_ledger WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 5"
);

const JOBS: &str = concat!(
    "SELECT id, prompt, photo_count, cost_cents, status, group_name, download_url, ",
    micros!("created_at"),
    ", (SELECT count(*) FROM photo_jobs
        WHERE user_id = $1 AND status IN ('PENDING', 'PROCESSING') AND group_name = 'Wedding')
     FROM photo_jobs
     WHERE user_id = $1 AND status IN ('PENDING', 'PROCESSING') AND group_name = 'Wedding'
     ORDER BY created_at DESC, id DESC LIMIT 21"
);

/// `timestamptz` as bff writes it: RFC 3339 in UTC, `+00:00`, with 0, 3 or 6 digits of
/// fraction as needed (chrono's `SecondsFormat::AutoSi`).
macro_rules! iso {
    ($column:literal) => {
        concat!(
            "(to_char(",
            $column,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || ",
            "CASE WHEN extract(microseconds FROM ",
            $column,
            ")::int8 % 1000000 = 0 THEN '' ",
            "WHEN extract(microseconds FROM ",
            $column,
            ")::int8 % 1000 = 0 THEN to_char(",
            $column,
            " AT TIME ZONE 'UTC', '.MS') ELSE to_char(",
            $column,
            " AT TIME ZONE 'UTC', '.US') END || '+00:00')"
        )
    };
}

/// Cents as bff's decimal string (`50.01`, `-0.30`).
macro_rules! decimal {
    ($column:literal) => {
        concat!("round(", $column, " / 100.0, 2)::text")
    };
}

/// Base64url without padding, as bff's ids and cursors.
macro_rules! base64url {
    ($text:literal) => {
        concat!(
            "rtrim(translate(encode(convert_to(",
            $text,
            ", 'UTF8'), 'base64'), '+/', '-_'), '=')"
        )
    };
}

/// The whole dashboard answer, built by PostgreSQL: `$1` the session token, `$2` the free
/// photo allowance. No row when the session is unknown or expired.
const DASHBOARD: &str = concat!(
    "SELECT json_build_object('data', json_build_object('viewer', json_build_object(
       'id', u.id, 'name', u.name, 'email', u.email,
       'subscription', json_build_object(
         'plan', COALESCE(sub.plan, 'FREE'), 'status', COALESCE(sub.status, 'ACTIVE'),
         'currentPeriodEnd', ",
    iso!("sub.current_period_end"),
    ", 'cancelAtPeriodEnd', COALESCE(sub.cancel_at_period_end, false),
         'entitlements', json_build_object('monthlyPhotoQuota', e.monthly_photo_quota,
           'pricePerPhoto', ",
    decimal!("e.price_per_photo_cents"),
    ", 'maxPhotosPerJob', e.max_photos_per_job)),
       'credits', json_build_object(
         'balance', ",
    decimal!("COALESCE(ca.balance_cents, 0)"),
    ", 'freePhotosRemaining', greatest($2 - COALESCE(ca.free_photos_used, 0), 0),
         'transactions', json_build_object('edges', COALESCE((
           SELECT json_agg(json_build_object('node', json_build_object(
               'kind', l.kind, 'amount', ",
    decimal!("l.amount_cents"),
    ", 'balanceAfter', ",
    decimal!("l.balance_after_cents"),
    ", 'description', l.description, 'createdAt', ",
    iso!("l.created_at"),
    ")) ORDER BY l.created_at DESC, l.id DESC)
           FROM (SELECT * FROM credit_ledger WHERE user_id = u.id
                 ORDER BY created_at DESC, id DESC LIMIT 5) l), '[]'::json))),
       'usage', json_build_array(
         json_build_object('metric', 'PHOTOS', 'used', used.n, 'limit', e.monthly_photo_quota,
           'remaining', CASE WHEN e.monthly_photo_quota IS NOT NULL
                             THEN greatest(e.monthly_photo_quota - used.n, 0) END,
           'windowStart', ",
    iso!("win.start"),
    ", 'windowEnd', ",
    iso!("win.end"),
    "),
         json_build_object('metric', 'STORAGE_BYTES', 'used', kept.bytes, 'limit', e.storage_bytes_limit,
           'remaining', CASE WHEN e.storage_bytes_limit IS NOT NULL
                             THEN greatest(e.storage_bytes_limit - kept.bytes, 0) END,
           'windowStart', ",
    iso!("win.start"),
    ", 'windowEnd', ",
    iso!("win.end"),
    ")),
       'photoJobs', (
         SELECT json_build_object(
           'totalCount', COALESCE(max(j.total), 0),
           'pageInfo', json_build_object('hasNextPage', COALESCE(max(j.total), 0) > 20,
             'endCursor', max(CASE WHEN j.n = least(j.total, 20) THEN ",
    base64url!("(extract(epoch FROM j.created_at) * 1000000)::int8 || ':' || j.id"),
    " END)),
           'edges', COALESCE(json_agg(json_build_object('node', json_build_object(
               'id', ",
    base64url!("'PhotoJob:' || j.id"),
    ", 'prompt', j.prompt, 'photoCount', j.photo_count,
               'cost', ",
    decimal!("j.cost_cents"),
    ", 'status', j.status, 'groupName', j.group_name, 'downloadUrl', j.download_url,
               'createdAt', ",
    iso!("j.created_at"),
    ")) ORDER BY j.n), '[]'::json))
         -- One scan of the viewer's matching jobs numbers them and counts them all.
         FROM (SELECT p.id, p.prompt, p.photo_count, p.cost_cents, p.status, p.group_name,
                      p.download_url, p.created_at,
                      row_number() OVER (ORDER BY p.created_at DESC, p.id DESC) AS n,
                      count(*) OVER () AS total
               FROM photo_jobs p
               WHERE p.user_id = u.id AND p.status IN ('PENDING', 'PROCESSING')
                 AND p.group_name = 'Wedding') j
         WHERE j.n <= 20)
     )))::text",
    viewer_from!(),
    " CROSS JOIN LATERAL (SELECT COALESCE((SELECT c.count FROM usage_counters c
         WHERE c.user_id = u.id AND c.metric = 'PHOTOS' AND c.window_start = win.start), 0) AS n) used
     CROSS JOIN LATERAL (SELECT COALESCE(sum(pu.byte_size), 0)::int8 AS bytes
         FROM photo_uploads pu WHERE pu.user_id = u.id) kept
     WHERE s.token = $1 AND s.\"expiresAt\" > now()"
);

struct Conn {
    client: Client,
    dashboard: Statement,
    lookup: Statement,
    session: Statement,
    ledger: Statement,
    jobs: Statement,
}

/// A fixed set of connections, one per request at a time.
struct Pool {
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

struct Checkout<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl std::ops::Deref for Checkout<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("held until dropped")
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.idle.lock().expect("not poisoned").push(conn);
        }
    }
}

impl Pool {
    async fn get(&self) -> Checkout<'_> {
        let permit = self.permits.acquire().await.expect("never closed");
        let conn = self.idle.lock().expect("not poisoned").pop();
        Checkout {
            pool: self,
            conn,
            _permit: permit,
        }
    }
}

struct App {
    pool: Pool,
    secret: Vec<u8>,
    cookie: String,
    free_allowance: i32,
}

#[tokio::main]
async fn main() {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let size: usize = var("DATABASE_POOL_SIZE", "5").parse().expect("a pool size");
    let mut idle = Vec::with_capacity(size);
    for _ in 0..size {
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
        tokio::spawn(connection);
        idle.push(Conn {
            dashboard: client.prepare(DASHBOARD).await.expect("DASHBOARD"),
            lookup: client.prepare(LOOKUP).await.expect("LOOKUP"),
            session: client.prepare(SESSION).await.expect("SESSION"),
            ledger: client.prepare(LEDGER).await.expect("LEDGER"),
            jobs: client.prepare(JOBS).await.expect("JOBS"),
            client,
        });
    }
    let app = Arc::new(App {
        pool: Pool {
            idle: Mutex::new(idle),
            permits: Semaphore::new(size),
        },
        secret: std::env::var("BETTER_AUTH_SECRET")
            .expect("BETTER_AUTH_SECRET")
            .into_bytes(),
        cookie: var("BETTER_AUTH_SESSION_COOKIE", "better-auth.session_token"),
        free_allowance: var("FREE_PHOTO_ALLOWANCE", "3").parse().expect("a number"),
    });
    let router = Router::new()
        .route("/dashboard", post(dashboard))
        .route("/dashboard1", post(dashboard_in_sql))
        .route("/viewer", post(viewer))
        .with_state(app);
    let listen = var("BASELINE_LISTEN", "127.0.0.1:8090");
    let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
    println!("baseline listening on http://{listen}");
    axum::serve(listener, router).await.expect("serve");
}

/// The session token of a correctly signed Better Auth cookie.
fn session_token(app: &App, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let value = cookies.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == app.cookie).then_some(value)
    })?;
    let value = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()?;
    let (token, signature) = value.rsplit_once('.')?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&app.secret).ok()?;
    mac.update(token.as_bytes());
    mac.verify_slice(&STANDARD.decode(signature).ok()?).ok()?;
    Some(token.to_owned())
}

fn json<T: Serialize>(body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Serialize)]
struct Data<T> {
    data: Viewer<T>,
}

#[derive(Serialize)]
struct Viewer<T> {
    viewer: Option<T>,
}

fn answer<T: Serialize>(viewer: Option<T>) -> Response {
    json(&Data {
        data: Viewer { viewer },
    })
}

/// The dashboard from [`DASHBOARD`]: PostgreSQL's text is the response body.
async fn dashboard_in_sql(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    _body: Bytes,
) -> Response {
    let Some(token) = session_token(&app, &headers) else {
        return answer::<Id>(None);
    };
    let conn = app.pool.get().await;
    match conn
        .client
        .query_opt(&conn.dashboard, &[&token, &app.free_allowance])
        .await
    {
        Ok(Some(row)) => (
            [(header::CONTENT_TYPE, "application/json")],
            row.get::<_, String>(0),
        )
            .into_response(),
        Ok(None) => answer::<Id>(None),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Serialize)]
struct Id {
    id: String,
}

async fn viewer(State(app): State<Arc<App>>, headers: HeaderMap, _body: Bytes) -> Response {
    let Some(token) = session_token(&app, &headers) else {
        return answer::<Id>(None);
    };
    let conn = app.pool.get().await;
    match conn.client.query_opt(&conn.session, &[&token]).await {
        Ok(row) => answer(row.map(|row| Id { id: row.get(0) })),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dashboard {
    id: String,
    name: String,
    email: String,
    subscription: Subscription,
    credits: Credits,
    usage: [Usage; 2],
    photo_jobs: Jobs,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    plan: String,
    status: String,
    current_period_end: Option<String>,
    cancel_at_period_end: bool,
    entitlements: Entitlements,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entitlements {
    monthly_photo_quota: Option<i32>,
    price_per_photo: String,
    max_photos_per_job: i32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Credits {
    balance: String,
    free_photos_remaining: i32,
    transactions: Edges<Entry>,
}

#[derive(Serialize)]
struct Edges<T> {
    edges: Vec<Node<T>>,
}

#[derive(Serialize)]
struct Node<T> {
    node: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    kind: String,
    amount: String,
    balance_after: String,
    description: String,
    created_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Usage {
    metric: &'static str,
    used: i64,
    limit: Option<i64>,
    remaining: Option<i64>,
    window_start: String,
    window_end: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Jobs {
    total_count: i64,
    page_info: PageInfo,
    edges: Vec<Node<Job>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Job {
    id: String,
    prompt: String,
    photo_count: i32,
    cost: String,
    status: String,
    group_name: Option<String>,
    download_url: Option<String>,
    created_at: String,
}

fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

fn time(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

async fn dashboard(State(app): State<Arc<App>>, headers: HeaderMap, _body: Bytes) -> Response {
    let Some(token) = session_token(&app, &headers) else {
        return answer::<Dashboard>(None);
    };
    let conn = app.pool.get().await;
    let Ok(row) = conn.client.query_opt(&conn.lookup, &[&token]).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Some(row) = row else {
        return answer::<Dashboard>(None);
    };
    let user_id: String = row.get(0);
    // Both pages at once: tokio-postgres pipelines them on the one connection.
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&user_id];
    let (ledger, jobs) = tokio::join!(
        conn.client.query(&conn.ledger, &params),
        conn.client.query(&conn.jobs, &params),
    );
    let (Ok(ledger), Ok(jobs)) = (ledger, jobs) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    drop(conn);
    let quota: Option<i32> = row.get(7);
    let used: i32 = row.get(14);
    let total_count = jobs.first().map_or(0, |row| row.get(8));
    let has_next_page = jobs.len() > 20;
    let jobs: Vec<_> = jobs.iter().take(20).collect();
    let end_cursor = jobs.last().map(|row| {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", row.get::<_, i64>(7), row.get::<_, i64>(0)))
    });
    answer(Some(Dashboard {
        id: user_id,
        name: row.get(1),
        email: row.get(2),
        subscription: Subscription {
            plan: row.get(3),
            status: row.get(4),
            current_period_end: row.get::<_, Option<i64>>(5).map(time),
            cancel_at_period_end: row.get(6),
            entitlements: Entitlements {
                monthly_photo_quota: quota,
                price_per_photo: decimal(row.get(8)),
                max_photos_per_job: row.get(9),
            },
        },
        credits: Credits {
            balance: decimal(row.get(10)),
            free_photos_remaining: (app.free_allowance - row.get::<_, i32>(11)).max(0),
            transactions: Edges {
                edges: ledger
                    .iter()
                    .map(|entry| Node {
                        node: Entry {
                            kind: entry.get(0),
                            amount: decimal(entry.get(1)),
                            balance_after: decimal(entry.get(2)),
                            description: entry.get(3),
                            created_at: time(entry.get(4)),
                        },
                    })
                    .collect(),
            },
        },
        usage: [
            Usage {
                metric: "PHOTOS",
                used: i64::from(used),
                limit: quota.map(i64::from),
                remaining: quota.map(|quota| i64::from((quota - used).max(0))),
                window_start: time(row.get(12)),
                window_end: time(row.get(13)),
            },
            Usage {
                metric: "STORAGE_BYTES",
                used: row.get(16),
                limit: row.get(15),
                remaining: row
                    .get::<_, Option<i64>>(15)
                    .map(|limit| (limit - row.get::<_, i64>(16)).max(0)),
                window_start: time(row.get(12)),
                window_end: time(row.get(13)),
            },
        ],
        photo_jobs: Jobs {
            total_count,
            page_info: PageInfo {
                has_next_page,
                end_cursor,
            },
            edges: jobs
                .iter()
                .map(|job| Node {
                    node: Job {
                        id: URL_SAFE_NO_PAD.encode(format!("PhotoJob:{}", job.get::<_, i64>(0))),
                        prompt: job.get(1),
                        photo_count: job.get(2),
                        cost: decimal(job.get(3)),
                        status: job.get(4),
                        group_name: job.get(5),
                        download_url: job.get(6),
                        created_at: time(job.get(7)),
                    },
                })
                .collect(),
        },
    }))
}
