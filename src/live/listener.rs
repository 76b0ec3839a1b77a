//! The listening connection: one per process, not one of the pool's, started with the first
//! subscriber. Every change to a job, a credit account or a subscription notifies the channel
//! `bff_live` from its own transaction (triggers, see the migrations), with ids only; on a
//! batch of notifications the listener reloads the objects with their owners on this
//! connection and publishes each to that owner's subscribers in this process. Any number of
//! processes deliver: each hears every notification.
//!
//! A job's progress (its worker's heartbeats) is passed on at most once per
//! `BFF_LIVE_PROGRESS_INTERVAL_MS` per job: the first report at once, then the latest of those
//! that follow when the interval has passed ([`Coalescer`]); any other change of the job goes
//! out at once with its progress as it is.
//!
//! When the connection drops (a database restart), it reconnects with backoff (100 ms doubling
//! to 5 s) and then re-sends the current state of what changed while it was deaf: the jobs
//! changed or deleted since it last confirmed it was listening, and every subscribed user's
//! credit account and billing subscription.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use futures_util::{FutureExt, StreamExt};
use tokio::time::Instant;

use super::hub::{Event, Hub};
use crate::db::connect::ConnectOptions;
use crate::db::credits::CreditAccount;
use crate::db::live::{CHANNEL, Change, JobState};
use crate::db::notifications::Notification;
use crate::db::pool::{DbPool, PoolError};
use crate::db::subscriptions::BillingState;

/// The most notifications handled in one batch (one reload statement per kind).
const BATCH: usize = 512;
/// How often the listening connection proves it is alive (and marks how far it has heard).
const HEARTBEAT: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why a user's objects could not be reloaded.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// No pooled connection.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A statement failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// The listening loop: connect, LISTEN, deliver; reconnect with backoff when the connection
/// drops, then catch the subscribers up. Runs until the application stops (`crate::app`).
/// `progress_interval`: the least time between two progress updates of one job.
pub(crate) async fn listen(hub: Arc<Hub>, options: ConnectOptions, progress_interval: Duration) {
    let mut backoff = BACKOFF_FIRST;
    // The database's time when this process last knew it was listening.
    let mut heard_until: Option<DateTime<Utc>> = None;
    loop {
        match start(&options).await {
            Ok((mut conn, now)) => {
                backoff = BACKOFF_FIRST;
                if let Some(since) = heard_until {
                    tracing::info!(%since, "listening again; re-sending what changed meanwhile");
                    if let Err(error) = catch_up(&hub, &mut conn, since).await {
                        tracing::warn!(%error, "could not catch subscribers up");
                    }
                }
                heard_until = Some(now);
                hub.set_listening(true);
                let mut progress = Coalescer::new(progress_interval);
                let error = deliver(&hub, &mut conn, &mut heard_until, &mut progress).await;
                hub.set_listening(false);
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

async fn start(options: &ConnectOptions) -> Result<(AsyncPgConnection, DateTime<Utc>), String> {
    let mut conn = options.connect().await.map_err(|e| e.to_string())?;
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
    /// Progress held back by the [`Coalescer`] is due.
    ProgressDue,
}

/// A job, by owner and id.
type JobKey = (String, i64);

/// Progress-only changes of jobs, passed on at most once per interval per job: the first at
/// once, then the latest of those that came meanwhile when the interval has passed. Nothing
/// queues: a job has at most one waiting, and it is reloaded (as it is then) when due.
pub(crate) struct Coalescer {
    interval: Duration,
    /// Per job: when it was last passed on, and whether newer progress waits.
    jobs: HashMap<JobKey, (Instant, bool)>,
}

impl Coalescer {
    pub(crate) fn new(interval: Duration) -> Self {
        Coalescer {
            interval,
            jobs: HashMap::new(),
        }
    }

    /// Whether a progress change of `key` goes out now; if not, it waits until due.
    pub(crate) fn admit(&mut self, key: &JobKey, now: Instant) -> bool {
        match self.jobs.get_mut(key) {
            Some((last, waiting)) if now < *last + self.interval => {
                *waiting = true;
                false
            }
            _ => {
                self.jobs.insert(key.clone(), (now, false));
                true
            }
        }
    }

    /// Any other change of `key` went out at once, with its progress as it is then.
    pub(crate) fn sent(&mut self, key: &JobKey, now: Instant) {
        if let Some(entry) = self.jobs.get_mut(key) {
            *entry = (now, false);
        }
    }

    /// When the next waiting progress is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.jobs
            .values()
            .filter(|(_, waiting)| *waiting)
            .map(|(last, _)| *last + self.interval)
            .min()
    }

    /// Forgets the jobs with nothing waiting that were last passed on a whole interval ago
    /// (their next report goes out at once anyway): the map holds only recent jobs.
    pub(crate) fn forget_quiet(&mut self, now: Instant) {
        let interval = self.interval;
        self.jobs
            .retain(|_, (last, waiting)| *waiting || now < *last + interval);
    }

    /// The jobs whose waiting progress is due, counted as passed on now; jobs quiet for a
    /// whole interval are forgotten.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<JobKey> {
        let interval = self.interval;
        let mut due = Vec::new();
        self.jobs.retain(|key, (last, waiting)| {
            if *waiting && now >= *last + interval {
                due.push(key.clone());
                (*last, *waiting) = (now, false);
            }
            *waiting || now < *last + interval
        });
        due
    }
}

/// Delivers notifications until the connection fails; returns why.
async fn deliver(
    hub: &Hub,
    conn: &mut AsyncPgConnection,
    heard_until: &mut Option<DateTime<Utc>>,
    progress: &mut Coalescer,
) -> String {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.reset();
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
                _ = sleep_until_due(progress.next_due()) => Wake::ProgressDue,
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
            Wake::Heartbeat => {
                progress.forget_quiet(Instant::now());
                crate::db::live::now(conn)
                    .await
                    .map(|now| *heard_until = Some(now))
            }
            Wake::ProgressDue => {
                let changes = progress
                    .due(Instant::now())
                    .into_iter()
                    .map(|(user_id, id)| Change::Job { user_id, id })
                    .collect();
                reload_and_publish(hub, conn, changes).await
            }
            Wake::Notified => {
                let now = Instant::now();
                let changes: Vec<Change> = batch
                    .iter()
                    .filter_map(|n| Change::parse(&n.payload))
                    .filter_map(|change| match change {
                        // Held back, unless its interval has passed.
                        Change::Progress { user_id, id } => {
                            let key = (user_id, id);
                            if hub.has_subscribers(&key.0) && progress.admit(&key, now) {
                                let (user_id, id) = key;
                                Some(Change::Job { user_id, id })
                            } else {
                                None
                            }
                        }
                        Change::Job { user_id, id } => {
                            let key = (user_id, id);
                            progress.sent(&key, now);
                            let (user_id, id) = key;
                            Some(Change::Job { user_id, id })
                        }
                        other => Some(other),
                    })
                    .collect();
                if changes
                    .iter()
                    .any(|c| matches!(c, Change::Notification { .. }))
                {
                    hub.notification_written();
                }
                let changes: Vec<Change> = changes
                    .into_iter()
                    .filter(|c| {
                        matches!(c, Change::Gone { .. }) || hub.has_subscribers(c.user_id())
                    })
                    .collect();
                reload_and_publish(hub, conn, changes).await
            }
        };
        if let Err(error) = result {
            return error.to_string();
        }
    }
}

/// Resolves at `due`; never without one.
async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
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
    let mut notifications = Vec::new();
    let mut seen = HashSet::new();
    for change in changes {
        if !seen.insert(change.clone()) {
            continue;
        }
        match change {
            Change::Job { user_id, id } | Change::Progress { user_id, id } => {
                jobs.push((user_id, id));
            }
            Change::Credits { user_id } => credits.push(user_id),
            Change::Billing { user_id } => billing.push(user_id),
            Change::Notification { user_id, id } => notifications.push((user_id, id)),
            Change::Gone { user_id } => hub.gone(&user_id),
            Change::Log { user_id, seq } => hub.publish(&user_id, Event::Logged(seq)),
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
    if !notifications.is_empty() {
        for notification in Notification::load(conn, &notifications).await? {
            let user = notification.user_id.clone();
            hub.publish(&user, Event::Notification(Arc::new(notification)));
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
        for notification in Notification::added_since(conn, users, since).await? {
            let user = notification.user_id.clone();
            hub.publish(&user, Event::Notification(Arc::new(notification)));
        }
        publish_accounts(hub, conn, users).await?;
        publish_billing(hub, conn, users).await?;
        // Followers of the change log read on from their cursors.
        for (user, version) in crate::db::changes::versions(conn, users).await? {
            hub.publish(&user, Event::Logged(version));
        }
    }
    Ok(())
}

/// A user's objects as they are now, for a subscriber that fell behind: the jobs changed or
/// deleted since `since`, oldest change first, then the credit account and billing state.
pub(crate) async fn reload_user(
    pool: &DbPool,
    user_id: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Event>, ReloadError> {
    let mut conn = pool.get().await?;
    let users = [user_id.to_owned()];
    let mut jobs = JobState::changed_since(&mut *conn, &users, since).await?;
    jobs.sort_by_key(|s| (s.deleted_at.unwrap_or(s.job.updated_at), s.job.id));
    let mut events: Vec<Event> = jobs.into_iter().map(|s| Event::Job(Arc::new(s))).collect();
    for notification in Notification::added_since(&mut *conn, &users, since).await? {
        events.push(Event::Notification(Arc::new(notification)));
    }
    for account in CreditAccount::load_many(&mut *conn, &users).await? {
        events.push(Event::Credits(Arc::new(account)));
    }
    for (_, state) in BillingState::load_many(&mut *conn, &users).await? {
        events.push(Event::Billing(Arc::new(state)));
    }
    Ok(events)
}
