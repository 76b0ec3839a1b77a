//! `Subscription`: the viewer's jobs, credits and billing as they change, over WebSocket.
//! Each field streams the objects the process's hub reloads, with their owner, after a change
//! (`crate::live`); the hub routes a user's events to that user's subscribers only, so another
//! user's job id names nothing here (`NOT_FOUND`, as in queries).

use async_graphql::{Context, ID, Subscription as SubscriptionRoot};
use futures_util::{Stream, StreamExt};

use super::billing::BillingSubscription;
use super::changes::{self, ViewerChanges};
use super::context::{jobs, read};
use super::credits::CreditAccount;
use super::ids::{Kind, row_id};
use super::notifications::Notification;
use super::photo_jobs::PhotoJob;
use crate::db::photo_jobs::PhotoJob as JobRow;
use crate::error::AppError;
use crate::live::hub::{Event, Subscriber};
use crate::live::listener::ReloadError;
use crate::live::viewer::{LiveViewer, NotListening};

impl From<NotListening> for AppError {
    fn from(error: NotListening) -> Self {
        AppError::Unavailable(error.to_string())
    }
}

impl From<ReloadError> for AppError {
    fn from(error: ReloadError) -> Self {
        match error {
            ReloadError::Pool(error) => error.into(),
            ReloadError::Query(error) => error.into(),
        }
    }
}

fn live_viewer<'a>(ctx: &Context<'a>) -> Result<&'a LiveViewer, AppError> {
    ctx.data::<LiveViewer>()
        .map_err(|_| AppError::Unauthenticated)
}

/// The row id of the viewer's job `id` (`NOT_FOUND` when it names none of theirs).
async fn own_job(ctx: &Context<'_>, live: &LiveViewer, id: &ID) -> Result<i64, AppError> {
    let not_found = || AppError::NotFound("photo job");
    let id = row_id(id, Kind::PhotoJob).ok_or_else(not_found)?;
    let conn = read(ctx).await?;
    JobRow::find(&mut &**conn, &live.user_id, id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(not_found)?;
    Ok(id)
}

/// The viewer's subscription to the hub (boxed: see `photo_job_updated`).
async fn subscribe(live: &LiveViewer) -> Result<Subscriber, AppError> {
    Ok(Box::pin(live.subscribe()).await?)
}

/// The stream of `T`s, with a reload failure as the masked error that ends it.
fn stream<T: Send + 'static>(
    events: impl Stream<Item = Result<T, ReloadError>> + Send + 'static,
) -> impl Stream<Item = async_graphql::Result<T>> + Send + 'static {
    events.map(|item| item.map_err(|error| AppError::from(error).into()))
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
            // Boxed, as the subscribing below: async-graphql keeps this resolver's future inside
            // the field's stream for as long as the subscription lasts, so its size is memory
            // of every idle subscription.
            Some(id) => Some(Box::pin(own_job(ctx, live, &id)).await?),
        };
        let subscriber = subscribe(live).await?;
        Ok(stream(live.events(subscriber, move |event| match event {
            Event::Job(state) if only.is_none_or(|id| id == state.job.id) => {
                Some(PhotoJob(state.job.clone(), state.deleted_at, None))
            }
            _ => None,
        })))
    }

    /// The viewer's credit account after every change to it: each ledger row (a purchase, a
    /// job's charge or refund), and each photo taken from the free allowance.
    async fn credits_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<CreditAccount>> + use<>>
    {
        let live = live_viewer(ctx)?;
        let allowance = jobs(ctx)?.free_photo_allowance;
        let subscriber = subscribe(live).await?;
        Ok(stream(live.events(subscriber, move |event| match event {
            Event::Credits(row) => Some(CreditAccount {
                row: (**row).clone(),
                free_photo_allowance: allowance,
            }),
            _ => None,
        })))
    }

    /// Each notification written for the viewer (a finished or failed job, low credits, a
    /// billing event), as it is written.
    async fn notification_added(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Notification>> + use<>>
    {
        let live = live_viewer(ctx)?;
        let subscriber = subscribe(live).await?;
        Ok(stream(live.events(subscriber, |event| match event {
            Event::Notification(row) => Some(Notification::from((**row).clone())),
            _ => None,
        })))
    }

    /// Everything that changes for the viewer, as `viewer.changes` answers it, each answer
    /// with its cursor. With `since` (a cursor from `viewer.changes` or an earlier event) it
    /// first replays what changed after it (the first event comes even when nothing did:
    /// caught up), then follows live, with no gap and no duplicate at the seam: every event
    /// is read from the viewer's change log after the previous one's cursor. Without `since`
    /// it follows from now. `CURSOR_EXPIRED` (then the stream ends) for a cursor too old to
    /// replay: read the page again.
    async fn viewer_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The cursor of the last answer applied.")] since: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ViewerChanges>> + use<>>
    {
        let live = live_viewer(ctx)?;
        let since = since.as_deref().map(changes::position).transpose()?;
        let allowance = jobs(ctx)?.free_photo_allowance;
        let subscriber = subscribe(live).await?;
        Ok(changes::follow(
            subscriber,
            live.pool().clone(),
            live.user_id.clone(),
            since,
            allowance,
        ))
    }

    /// The viewer's billing subscription after Stripe changes it (a checkout, a renewal, a
    /// failed payment, a cancellation, a plan change).
    async fn billing_subscription_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<BillingSubscription>> + use<>>
    {
        let live = live_viewer(ctx)?;
        let subscriber = subscribe(live).await?;
        Ok(stream(live.events(subscriber, |event| match event {
            Event::Billing(state) => Some(BillingSubscription((**state).clone())),
            _ => None,
        })))
    }
}
