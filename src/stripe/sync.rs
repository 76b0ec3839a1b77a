//! Reconciliation: lists Stripe's events of the types bff handles (`GET /v1/events`), newest
//! first, since the last successful run (less an overlap) or over the 30 days Stripe keeps
//! them, and applies each event never processed through [`events::handle`] — the webhook's
//! exactly-once path, so a webhook and a sync delivering one event apply it once. Missing
//! events are applied oldest first. One process at a time runs it (a PostgreSQL advisory
//! lock); it is safe to run at any time, any number of times.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::db::connect::ConnectOptions;
use crate::db::stripe::syncs::{self, Counts};
use crate::stripe::EventKind;
use crate::stripe::StripeClient;
use crate::stripe::events::{self, Event, Handled};
use crate::stripe::objects::{self, EventPage};

/// Events per page of Stripe's list (its maximum).
const PAGE: usize = 100;
/// Pages one run reads at most (a million events): a list that never ends stops here.
const MAX_PAGES: usize = 10_000;

/// What a run did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The instant it listed from.
    pub since: DateTime<Utc>,
    /// Its counts.
    pub counts: Counts,
    /// The events it applied: (id, type, outcome).
    pub recovered: Vec<(String, String, String)>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Another process holds the lock.
    #[error("another process is running the Stripe sync")]
    Busy,
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// Stripe failed, or answered something that is not a list of events.
    #[error("Stripe: {0}")]
    Stripe(String),
}

/// Runs one sync on `conn` under the sync lock (waiting for it when `wait`, else
/// [`SyncError::Busy`]). `full` lists Stripe's whole 30 days.
pub async fn run(
    conn: &mut AsyncPgConnection,
    client: &StripeClient,
    full: bool,
    wait: bool,
) -> Result<Report, SyncError> {
    if !syncs::lock(conn, wait).await? {
        return Err(SyncError::Busy);
    }
    let result = locked(conn, client, full).await;
    // On a broken connection the lock went with it.
    let _ = syncs::unlock(conn).await;
    result
}

/// Runs the sync when it is due, until the process stops: every process looks every quarter
/// `interval` (1 s to 1 min), and the one that takes the lock runs it when no run succeeded
/// within `interval` and none started within that quarter (so a failing run is retried that
/// often). Each process then reports the last successful run of any of them as a metric.
pub async fn periodic(
    options: ConnectOptions,
    client: StripeClient,
    interval: Duration,
    mut stop: crate::tasks::Stop,
) {
    let tick = (interval / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.tick(&mut ticks).await {
        let mut conn = match options.connect().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "Stripe sync: no database connection");
                continue;
            }
        };
        if let Err(error) = tick_once(&mut conn, &client, interval, tick).await {
            tracing::warn!(%error, "Stripe sync failed; it is retried");
        }
        if let Ok(Some(last)) = syncs::last_success(&mut conn).await {
            crate::metrics::stripe_sync_last_success(last);
        }
    }
}

async fn tick_once(
    conn: &mut AsyncPgConnection,
    client: &StripeClient,
    interval: Duration,
    retry: Duration,
) -> Result<(), SyncError> {
    if !syncs::lock(conn, false).await? {
        return Ok(());
    }
    let result = match syncs::due(conn, interval, retry).await {
        Ok(true) => locked(conn, client, false).await.map(|report| {
            if report.counts.recovered > 0 {
                tracing::warn!(
                    recovered = report.counts.recovered,
                    "Stripe sync applied events no webhook had delivered"
                );
            }
        }),
        Ok(false) => Ok(()),
        Err(error) => Err(error.into()),
    };
    let _ = syncs::unlock(conn).await;
    result
}

async fn locked(
    conn: &mut AsyncPgConnection,
    client: &StripeClient,
    full: bool,
) -> Result<Report, SyncError> {
    let (id, since) = syncs::start(conn, full).await?;
    let mut report = Report {
        since,
        counts: Counts::default(),
        recovered: Vec::new(),
    };
    let outcome = apply_missing(conn, client, &mut report).await;
    let error = outcome.as_ref().err().map(ToString::to_string);
    syncs::finish(conn, id, &report.counts, error.as_deref()).await?;
    crate::metrics::stripe_sync(
        if error.is_none() && report.counts.failed == 0 {
            "ok"
        } else {
            "failed"
        },
        report.counts.recovered,
    );
    outcome.map(|()| report)
}

/// Lists the events since `report.since`, keeps the ones never processed, and applies them
/// oldest first.
async fn apply_missing(
    conn: &mut AsyncPgConnection,
    client: &StripeClient,
    report: &mut Report,
) -> Result<(), SyncError> {
    let mut missing = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (page, has_more) = list(client, report.since, after.as_deref()).await?;
        report.counts.listed += page.len();
        let ids: Vec<String> = page.iter().map(|e| e.id.clone()).collect();
        let known = syncs::processed(conn, &ids).await?;
        missing.extend(page.into_iter().filter(|e| !known.contains(&e.id)));
        match ids.last() {
            Some(last) if has_more => after = Some(last.clone()),
            _ => break,
        }
    }
    missing.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    for event in &missing {
        match events::handle(conn, event).await {
            Ok(Handled::Recorded(outcome)) => {
                tracing::info!(event = %event.id, kind = %event.kind, %outcome, "Stripe sync applied a missed event");
                crate::metrics::stripe_event(event.label(), outcome.as_db());
                report.counts.recovered += 1;
                report
                    .recovered
                    .push((event.id.clone(), event.kind.clone(), outcome.to_string()));
            }
            // A webhook delivered it meanwhile.
            Ok(Handled::Duplicate) => {}
            Err(error) => {
                tracing::error!(%error, event = %event.id, "Stripe sync could not apply an event; the next run retries it");
                report.counts.failed += 1;
            }
        }
    }
    Ok(())
}

/// One page of `GET /v1/events`, newest first, and whether more follow.
async fn list(
    client: &StripeClient,
    since: DateTime<Utc>,
    after: Option<&str>,
) -> Result<(Vec<Event>, bool), SyncError> {
    let mut query = vec![
        ("limit", PAGE.to_string()),
        ("created[gte]", since.timestamp().to_string()),
    ];
    query.extend(
        EventKind::ALL
            .iter()
            .map(|kind| ("types[]", kind.as_str().to_owned())),
    );
    if let Some(after) = after {
        query.push(("starting_after", after.to_owned()));
    }
    let body = client
        .get_with("events", &query)
        .await
        .map_err(|e| SyncError::Stripe(e.to_string()))?;
    let page: EventPage = objects::read(&body);
    let Some(data) = page.data else {
        return Err(SyncError::Stripe("the answer is not a list".into()));
    };
    let events: Vec<Event> = data.iter().filter_map(Event::from_json).collect();
    if events.len() != data.len() {
        return Err(SyncError::Stripe(
            "the list holds something that is not an event".into(),
        ));
    }
    Ok((events, page.has_more))
}
