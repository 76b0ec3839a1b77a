//! `Subscription`: the viewer's jobs, credits and billing as they change, over WebSocket
//! (`crate::http::ws`). Each field streams the objects the process's [`Hub`] reloads, with
//! their owner, after a change; the hub routes a user's events to that user's subscribers only,
//! so another user's job id names nothing here (`NOT_FOUND`, as in queries).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, ID, Subscription as SubscriptionRoot};
use chrono::{DateTime, Utc};
use futures_util::Stream;

use crate::db::DbPool;
use crate::db::photo_jobs::PhotoJob as JobRow;
use crate::error::AppError;
use crate::graphql::billing::BillingSubscription;
use crate::graphql::credits::CreditAccount;
use crate::graphql::node::{Kind, row_id};
use crate::graphql::photo_jobs::PhotoJob;
use crate::graphql::{Settings, read};
use crate::live::{Event, Hub, Subscriber};

/// How long a subscription waits for the process's listening connection before it fails.
const LISTEN_WAIT: Duration = Duration::from_secs(5);

/// Who a WebSocket connection signed in as, in its operations' data, with the operation's
/// subscription to the hub when the connection made it beforehand.
#[derive(Clone)]
pub struct LiveViewer {
    /// The user id.
    pub user_id: String,
    /// The process's hub.
    pub hub: Arc<Hub>,
    /// The pool, to catch a subscriber up that fell behind.
    pub pool: DbPool,
    subscriber: Arc<std::sync::Mutex<Option<Subscriber>>>,
}

impl LiveViewer {
    /// The viewer `user_id`, subscribing through `hub`.
    pub fn new(user_id: String, hub: Arc<Hub>, pool: DbPool) -> Self {
        LiveViewer {
            user_id,
            hub,
            pool,
            subscriber: Arc::default(),
        }
    }

    /// For one operation: subscribed to the hub now, with the listening connection up, so
    /// that everything committed from now on reaches it (the WebSocket answers the client's
    /// next message only after this).
    pub async fn subscribed(&self) -> Result<LiveViewer, AppError> {
        let subscriber = self.subscribe().await?;
        Ok(LiveViewer {
            subscriber: Arc::new(std::sync::Mutex::new(Some(subscriber))),
            ..self.clone()
        })
    }

    async fn subscribe(&self) -> Result<Subscriber, AppError> {
        if let Some(subscriber) = self.subscriber.lock().expect("subscriber lock").take() {
            return Ok(subscriber);
        }
        // Subscribed before the listener is known to listen: nothing committed after this
        // returns can be missed.
        let subscriber = self.hub.subscribe(&self.user_id);
        if !self.hub.ready(LISTEN_WAIT).await {
            return Err(AppError::Pool("live updates are not listening".into()));
        }
        Ok(subscriber)
    }
}

fn live_viewer<'a>(ctx: &Context<'a>) -> Result<&'a LiveViewer, AppError> {
    ctx.data::<LiveViewer>()
        .map_err(|_| AppError::Unauthenticated)
}

/// Live updates; over WebSocket only (`graphql-transport-ws` or legacy `graphql-ws`).
#[derive(Default)]
pub struct Subscription;

/// Live updates; over WebSocket only (`graphql-transport-ws` or legacy `graphql-ws`).
#[SubscriptionRoot]
impl Subscription {
    /// The job `id` after every change, or every one of the viewer's jobs when `id` is
    /// omitted: created, changed (status, group, results) and deleted. A deleted job arrives
    /// once more as it was, with `deletedAt` set. `NOT_FOUND` for an id that is not the viewer's.
    async fn photo_job_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One job; all of the viewer's when omitted.")] id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<PhotoJob>> + use<>> {
        let live = live_viewer(ctx)?;
        let only = match id {
            None => None,
            Some(id) => {
                let not_found = || AppError::NotFound("photo job");
                let id = row_id(&id, Kind::PhotoJob).ok_or_else(not_found)?;
                let conn = read(ctx).await?;
                JobRow::find(&mut &**conn, &live.user_id, id)
                    .await
                    .map_err(AppError::from)?
                    .ok_or_else(not_found)?;
                Some(id)
            }
        };
        let subscriber = live.subscribe().await?;
        Ok(events(live, subscriber, move |event| match event {
            Event::Job(state) if only.is_none_or(|id| id == state.job.id) => {
                Some(PhotoJob(state.job.clone(), state.deleted_at))
            }
            _ => None,
        }))
    }

    /// The viewer's credit account after every change to it: each ledger row (a purchase, a
    /// job's charge or refund), and each photo taken from the free allowance.
    async fn credits_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<CreditAccount>> + use<>>
    {
        let live = live_viewer(ctx)?;
        let allowance = ctx.data_unchecked::<Settings>().free_photo_allowance;
        let subscriber = live.subscribe().await?;
        Ok(events(live, subscriber, move |event| match event {
            Event::Credits(row) => Some(CreditAccount {
                row: (**row).clone(),
                free_photo_allowance: allowance,
            }),
            _ => None,
        }))
    }

    /// The viewer's billing subscription after Stripe changes it (a checkout, a renewal, a
    /// failed payment, a cancellation, a plan change).
    async fn billing_subscription_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<BillingSubscription>> + use<>>
    {
        let live = live_viewer(ctx)?;
        let subscriber = live.subscribe().await?;
        Ok(events(live, subscriber, |event| match event {
            Event::Billing(state) => Some(BillingSubscription((**state).clone())),
            _ => None,
        }))
    }
}

/// The subscriber's events that `pick` keeps. A subscriber that fell more than the hub's
/// buffer behind (a bulk change of many jobs at once, or a client reading slowly) is caught up
/// from the database: the jobs changed since the newest change it had seen (less a margin for
/// commits in flight), and the account and billing as they are now; a failure to reload ends
/// the subscription with the masked error.
fn events<T, P>(
    live: &LiveViewer,
    subscriber: Subscriber,
    pick: P,
) -> impl Stream<Item = async_graphql::Result<T>> + use<T, P>
where
    T: Send + 'static,
    P: Fn(&Event) -> Option<T> + Send + 'static,
{
    let state = Caught {
        subscriber,
        pick,
        pool: live.pool.clone(),
        user_id: live.user_id.clone(),
        seen: Utc::now(),
        queue: VecDeque::new(),
    };
    futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        loop {
            let event = match state.queue.pop_front() {
                Some(event) => event,
                None => match state.subscriber.next().await {
                    Ok(event) => event,
                    Err(missed) => {
                        tracing::debug!(missed, user = %state.user_id, "catching a subscriber up");
                        let since = state.seen - chrono::Duration::seconds(CATCH_UP_MARGIN_SECONDS);
                        match crate::live::reload_user(&state.pool, &state.user_id, since).await {
                            Ok(events) => state.queue.extend(events),
                            Err(error) => return Some((Err(error.into()), None)),
                        }
                        continue;
                    }
                },
            };
            if let Event::Job(job) = &event {
                state.seen = state.seen.max(job.deleted_at.unwrap_or(job.job.updated_at));
            }
            if let Some(item) = (state.pick)(&event) {
                return Some((Ok(item), Some(state)));
            }
        }
    })
}

/// How far before the newest change a subscriber had seen its catch-up reads (commits in
/// flight then, and clocks: the subscription starts from this process's time).
const CATCH_UP_MARGIN_SECONDS: i64 = 5;

struct Caught<P> {
    subscriber: Subscriber,
    pick: P,
    pool: DbPool,
    user_id: String,
    seen: DateTime<Utc>,
    queue: VecDeque<Event>,
}
