//! Live updates, fanned out through PostgreSQL: every change to a job, a credit account or a
//! subscription notifies the channel `bff_live` from its own transaction (triggers, see the
//! migrations), with ids only. Each process holds one dedicated listening connection (not one
//! of the pool's), started with its first subscriber; on a batch of notifications it reloads
//! the objects with their owners on that connection and hands each to that owner's subscribers
//! in this process only. Any number of processes deliver: each hears every notification.
//!
//! When the listening connection drops (a database restart), the process reconnects with
//! backoff (100 ms doubling to 5 s) and then re-sends its subscribers the current state of
//! what changed while it was deaf: the jobs changed or deleted since it last confirmed it was
//! listening, and every subscribed user's credit account and billing subscription.
//!
//! The same connection checks, every `BFF_WS_SESSION_CHECK_SECONDS`, that the credentials of
//! the open WebSocket connections still sign someone in, and closes the others (4403).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{broadcast, oneshot, watch};

use crate::db::connect::ConnectOptions;
use crate::db::credits::CreditAccount;
use crate::db::live::{CHANNEL, Change, JobState};
use crate::db::subscriptions::BillingState;

/// How many events a user's subscribers may fall behind before they are caught up by reloading
/// (a bulk change, or a client reading slowly) rather than event by event.
const EVENTS_BUFFERED: usize = 64;
/// The most notifications handled in one batch (one reload statement per kind).
const BATCH: usize = 512;
/// How often the listening connection proves it is alive (and marks how far it has heard).
const HEARTBEAT: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What a subscriber receives: an object, reloaded with its owner after a change.
#[derive(Clone, Debug)]
pub enum Event {
    /// A photo job, or its last state with `deleted_at` once deleted.
    Job(Arc<JobState>),
    /// The credit account.
    Credits(Arc<CreditAccount>),
    /// The billing subscription.
    Billing(Arc<BillingState>),
}

/// The limits of the WebSocket surface (`BFF_WS_*`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections per process.
    pub connections: usize,
    /// Open connections per viewer.
    pub connections_per_viewer: usize,
    /// Subscriptions per connection.
    pub subscriptions_per_connection: usize,
    /// Time allowed between the upgrade and `connection_init`.
    pub init_timeout: Duration,
    /// How often the server pings (and how long a silent peer has before it is dropped: two).
    pub keepalive: Duration,
    /// How often open connections' credentials are checked again.
    pub session_check: Duration,
    /// Time allowed to write one message to a client before it counts as not reading.
    pub write_timeout: Duration,
    /// The largest message a client may send, in bytes.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 20_000,
            connections_per_viewer: 16,
            subscriptions_per_connection: 32,
            init_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(15),
            session_check: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
        }
    }
}

/// Why the server ends a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The session was signed out or expired.
    Revoked,
}

struct Registered {
    user_id: String,
    credential: Credential,
    end: Option<oneshot::Sender<Ending>>,
}

/// What a connection signed in with, checked again while it stays open.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A Better Auth session token.
    Session(String),
    /// A Better Auth JWT (and the issuer it must name).
    Jwt(String, String),
}

/// One process's subscribers and its listening connection.
pub struct Hub {
    users: Mutex<HashMap<String, broadcast::Sender<Event>>>,
    connections: Mutex<HashMap<u64, Registered>>,
    open: AtomicUsize,
    next_id: AtomicU64,
    started: std::sync::Once,
    listening: watch::Sender<bool>,
    options: ConnectOptions,
    /// The limits in force.
    pub limits: Limits,
}

impl Hub {
    /// A hub that connects with `options` once it has a subscriber.
    pub fn new(options: ConnectOptions, limits: Limits) -> Arc<Hub> {
        Arc::new(Hub {
            users: Mutex::default(),
            connections: Mutex::default(),
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            started: std::sync::Once::new(),
            listening: watch::Sender::new(false),
            options,
            limits,
        })
    }

    /// Starts the listening connection (once) and waits until it listens, at most `wait`.
    pub async fn ready(self: &Arc<Self>, wait: Duration) -> bool {
        self.started.call_once(|| {
            tokio::spawn(listen(self.clone()));
        });
        let mut listening = self.listening.subscribe();
        tokio::time::timeout(wait, listening.wait_for(|l| *l))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether the listening connection is up.
    pub fn is_listening(&self) -> bool {
        *self.listening.borrow()
    }

    /// Subscribes to `user_id`'s events.
    pub fn subscribe(self: &Arc<Self>, user_id: &str) -> Subscriber {
        let mut users = self.users.lock().expect("hub lock");
        let receiver = users
            .entry(user_id.to_owned())
            .or_insert_with(|| broadcast::channel(EVENTS_BUFFERED).0)
            .subscribe();
        Subscriber {
            receiver: Some(receiver),
            hub: self.clone(),
            user_id: user_id.to_owned(),
        }
    }

    fn subscribed_users(&self) -> Vec<String> {
        self.users
            .lock()
            .expect("hub lock")
            .keys()
            .cloned()
            .collect()
    }

    fn has_subscribers(&self, user_id: &str) -> bool {
        self.users.lock().expect("hub lock").contains_key(user_id)
    }

    fn publish(&self, user_id: &str, event: Event) {
        if let Some(sender) = self.users.lock().expect("hub lock").get(user_id) {
            // No receiver left is not an error: it is leaving.
            let _ = sender.send(event);
        }
    }

    /// Counts a new connection against the process's limit; `None` past it.
    pub fn open_connection(self: &Arc<Self>) -> Option<OpenConnection> {
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        let slot = OpenConnection {
            hub: self.clone(),
            id: None,
        };
        (open < self.limits.connections).then_some(slot)
    }

    /// How many WebSocket connections are open.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// An open WebSocket connection's place in the process's count and registry.
pub struct OpenConnection {
    hub: Arc<Hub>,
    id: Option<u64>,
}

impl OpenConnection {
    /// Registers the signed-in connection, if its viewer has fewer than the limit; the receiver
    /// resolves when the server ends it (its session was revoked).
    pub fn sign_in(
        &mut self,
        user_id: &str,
        credential: Credential,
    ) -> Option<oneshot::Receiver<Ending>> {
        let mut connections = self.hub.connections.lock().expect("hub lock");
        let of_user = connections
            .values()
            .filter(|c| c.user_id == user_id)
            .count();
        if of_user >= self.hub.limits.connections_per_viewer {
            return None;
        }
        let (end, ended) = oneshot::channel();
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        connections.insert(
            id,
            Registered {
                user_id: user_id.to_owned(),
                credential,
                end: Some(end),
            },
        );
        self.id = Some(id);
        Some(ended)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.hub.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(id) = self.id {
            self.hub.connections.lock().expect("hub lock").remove(&id);
        }
    }
}

/// One subscription's view of its user's events; leaving removes the user from the hub when
/// they were the last.
pub struct Subscriber {
    receiver: Option<broadcast::Receiver<Event>>,
    hub: Arc<Hub>,
    user_id: String,
}

impl Subscriber {
    /// The next event; `Err(n)` when `n` events were missed because this subscriber was not
    /// read in time.
    pub async fn next(&mut self) -> Result<Event, u64> {
        let receiver = self.receiver.as_mut().expect("present until dropped");
        loop {
            match receiver.recv().await {
                Ok(event) => return Ok(event),
                Err(broadcast::error::RecvError::Lagged(n)) => return Err(n),
                // The hub keeps a user's sender while any receiver lives: unreachable.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut users = self.hub.users.lock().expect("hub lock");
        if users
            .get(&self.user_id)
            .is_some_and(|s| s.receiver_count() == 0)
        {
            users.remove(&self.user_id);
        }
    }
}

/// The listening loop: connect, LISTEN, deliver; reconnect with backoff when the connection
/// drops, then catch the subscribers up.
async fn listen(hub: Arc<Hub>) {
    let mut backoff = BACKOFF_FIRST;
    // The database's time when this process last knew it was listening.
    let mut heard_until: Option<DateTime<Utc>> = None;
    loop {
        match start(&hub).await {
            Ok((mut conn, now)) => {
                backoff = BACKOFF_FIRST;
                if let Some(since) = heard_until {
                    tracing::info!(%since, "listening again; re-sending what changed meanwhile");
                    if let Err(error) = catch_up(&hub, &mut conn, since).await {
                        tracing::warn!(%error, "could not catch subscribers up");
                    }
                }
                heard_until = Some(now);
                hub.listening.send_replace(true);
                let error = deliver(&hub, &mut conn, &mut heard_until).await;
                hub.listening.send_replace(false);
                crate::metrics::db_error("listen");
                tracing::warn!(%error, "lost the listening connection; reconnecting");
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "cannot listen for live updates");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

async fn start(hub: &Hub) -> Result<(AsyncPgConnection, DateTime<Utc>), String> {
    let mut conn = hub.options.connect().await.map_err(|e| e.to_string())?;
    let listen = diesel::sql_query(format!("LISTEN {CHANNEL}"));
    diesel_async::RunQueryDsl::execute(listen, &mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let now = crate::db::live::now(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok((conn, now))
}

/// What woke the listening loop.
enum Wake {
    Notified,
    Failed(String),
    Heartbeat,
    SessionCheck,
}

/// Delivers notifications until the connection fails; returns why.
async fn deliver(
    hub: &Hub,
    conn: &mut AsyncPgConnection,
    heard_until: &mut Option<DateTime<Utc>>,
) -> String {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.reset();
    let mut session_check = tokio::time::interval(hub.limits.session_check);
    session_check.reset();
    loop {
        let mut batch = Vec::new();
        let wake = {
            let mut notifications = std::pin::pin!(conn.notifications_stream());
            let wake = tokio::select! {
                first = notifications.next() => match first {
                    Some(Ok(n)) => {
                        batch.push(n);
                        Wake::Notified
                    }
                    Some(Err(e)) => Wake::Failed(e.to_string()),
                    None => Wake::Failed("the connection closed".to_owned()),
                },
                _ = heartbeat.tick() => Wake::Heartbeat,
                _ = session_check.tick() => Wake::SessionCheck,
            };
            // Whatever else has already arrived goes in the same batch.
            while matches!(wake, Wake::Notified) && batch.len() < BATCH {
                match notifications.next().now_or_never() {
                    Some(Some(Ok(n))) => batch.push(n),
                    _ => break,
                }
            }
            wake
        };
        let result = match wake {
            Wake::Failed(error) => return error,
            Wake::Heartbeat => crate::db::live::now(conn)
                .await
                .map(|now| *heard_until = Some(now)),
            Wake::SessionCheck => check_sessions(hub, conn).await,
            Wake::Notified => {
                let changes: Vec<Change> = batch
                    .iter()
                    .filter_map(|n| Change::parse(&n.payload))
                    .filter(|c| hub.has_subscribers(c.user_id()))
                    .collect();
                reload_and_publish(hub, conn, changes).await
            }
        };
        if let Err(error) = result {
            return error.to_string();
        }
    }
}

/// Reloads what `changes` name, with their owners, and publishes each to its owner.
async fn reload_and_publish(
    hub: &Hub,
    conn: &mut AsyncPgConnection,
    changes: Vec<Change>,
) -> diesel::QueryResult<()> {
    let mut jobs = Vec::new();
    let mut credits = Vec::new();
    let mut billing = Vec::new();
    let mut seen = HashSet::new();
    for change in changes {
        if !seen.insert(change.clone()) {
            continue;
        }
        match change {
            Change::Job { user_id, id } => jobs.push((user_id, id)),
            Change::Credits { user_id } => credits.push(user_id),
            Change::Billing { user_id } => billing.push(user_id),
        }
    }
    if !jobs.is_empty() {
        // In the order they were notified: a subscriber to all of a user's jobs sees them so.
        let mut loaded: HashMap<(String, i64), JobState> = JobState::load(conn, &jobs)
            .await?
            .into_iter()
            .map(|s| ((s.job.user_id.clone(), s.job.id), s))
            .collect();
        for key in jobs {
            if let Some(state) = loaded.remove(&key) {
                hub.publish(&key.0, Event::Job(Arc::new(state)));
            }
        }
    }
    publish_accounts(hub, conn, &credits).await?;
    publish_billing(hub, conn, &billing).await
}

async fn publish_accounts(
    hub: &Hub,
    conn: &mut AsyncPgConnection,
    users: &[String],
) -> diesel::QueryResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    for account in CreditAccount::load_many(conn, users).await? {
        let user = account.user_id.clone();
        hub.publish(&user, Event::Credits(Arc::new(account)));
    }
    Ok(())
}

async fn publish_billing(
    hub: &Hub,
    conn: &mut AsyncPgConnection,
    users: &[String],
) -> diesel::QueryResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    for (user, state) in BillingState::load_many(conn, users).await? {
        hub.publish(&user, Event::Billing(Arc::new(state)));
    }
    Ok(())
}

/// After a gap in listening: the jobs changed since `since`, and every subscribed user's
/// account and billing, re-sent as events.
async fn catch_up(
    hub: &Hub,
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    for users in hub.subscribed_users().chunks(BATCH) {
        for state in JobState::changed_since(conn, users, since).await? {
            let user = state.job.user_id.clone();
            hub.publish(&user, Event::Job(Arc::new(state)));
        }
        publish_accounts(hub, conn, users).await?;
        publish_billing(hub, conn, users).await?;
    }
    Ok(())
}

/// A user's objects as they are now, for a subscriber that fell behind: the jobs changed or
/// deleted since `since`, oldest change first, then the credit account and billing state.
pub async fn reload_user(
    pool: &crate::db::DbPool,
    user_id: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Event>, crate::error::AppError> {
    let mut conn = pool.get().await?;
    let users = [user_id.to_owned()];
    let mut jobs = JobState::changed_since(&mut *conn, &users, since).await?;
    jobs.sort_by_key(|s| (s.deleted_at.unwrap_or(s.job.updated_at), s.job.id));
    let mut events: Vec<Event> = jobs.into_iter().map(|s| Event::Job(Arc::new(s))).collect();
    for account in CreditAccount::load_many(&mut *conn, &users).await? {
        events.push(Event::Credits(Arc::new(account)));
    }
    for (_, state) in BillingState::load_many(&mut *conn, &users).await? {
        events.push(Event::Billing(Arc::new(state)));
    }
    Ok(events)
}

/// Ends the connections whose session has been signed out or has expired (one statement for
/// all session tokens; a JWT is checked again on its own).
async fn check_sessions(hub: &Hub, conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    let credentials: Vec<(u64, Credential)> = hub
        .connections
        .lock()
        .expect("hub lock")
        .iter()
        .map(|(id, c)| (*id, c.credential.clone()))
        .collect();
    if credentials.is_empty() {
        return Ok(());
    }
    let tokens: Vec<String> = credentials
        .iter()
        .filter_map(|(_, c)| match c {
            Credential::Session(token) => Some(token.clone()),
            Credential::Jwt(..) => None,
        })
        .collect();
    let live: HashSet<String> = crate::db::better_auth::live_sessions(conn, &tokens)
        .await?
        .into_iter()
        .collect();
    let mut ended = Vec::new();
    for (id, credential) in credentials {
        let valid = match &credential {
            Credential::Session(token) => live.contains(token),
            Credential::Jwt(token, issuer) => {
                let mut conn: &mut AsyncPgConnection = conn;
                matches!(
                    crate::auth::jwt::verify(&mut conn, token, issuer).await,
                    Ok(Some(_))
                )
            }
        };
        if !valid {
            ended.push(id);
        }
    }
    let mut connections = hub.connections.lock().expect("hub lock");
    for id in ended {
        if let Some(end) = connections.get_mut(&id).and_then(|c| c.end.take()) {
            let _ = end.send(Ending::Revoked);
        }
    }
    Ok(())
}
