//! `Viewer`: the signed-in person and everything they own. Every field queries with the
//! viewer's id.

use async_graphql::{Context, ID, Object};

use tokio::sync::OnceCell;

use super::billing::{BillingSubscription, UsageMeter};
use super::changes::{self, ViewerChanges};
use super::context::{self, read};
use super::credits::CreditAccount;
use super::ids::{Kind, row_id};
use super::notifications::{self, NotificationConnection, NotificationPreference};
use super::photo_jobs::{self, PhotoJob, PhotoJobConnection, PhotoJobFilter};
use super::purchases::{self, PurchaseConnection};
use crate::db::photo_jobs::PhotoJob as PhotoJobRow;
use crate::db::viewer::SessionUser;
use crate::db::viewer::ViewerState;
use crate::error::AppError;

/// The signed-in person. Their subscription, credit account and usage came with the session
/// lookup (one statement: [`crate::db::viewer`]) when the operation selects them; lists query
/// on the request's connection.
pub(crate) struct Viewer {
    user: SessionUser,
    state: OnceCell<ViewerState>,
}

impl Viewer {
    /// The viewer for a session's user.
    pub(crate) fn new(user: SessionUser) -> Self {
        Viewer {
            state: OnceCell::new_with(user.state.clone()),
            user,
        }
    }

    /// Billing, credits and usage: from the lookup, or (when the lean lookup ran because the
    /// document did not seem to need them) read now, in one statement.
    async fn state(&self, ctx: &Context<'_>) -> Result<&ViewerState, AppError> {
        self.state
            .get_or_try_init(|| async {
                let conn = read(ctx).await?;
                SessionUser::find_by_user_id(&mut &**conn, &self.user.id)
                    .await?
                    .and_then(|user| user.state)
                    .ok_or_else(|| AppError::Internal("the viewer's user row is gone".into()))
            })
            .await
    }
}

/// The signed-in person and everything they own.
#[Object]
impl Viewer {
    /// The Better Auth user id.
    async fn id(&self) -> ID {
        ID(self.user.id.clone())
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.user.name
    }
    /// Email address.
    async fn email(&self) -> &str {
        &self.user.email
    }
    /// Whether the email address was verified.
    async fn email_verified(&self) -> bool {
        self.user.email_verified
    }
    /// Avatar URL.
    async fn image(&self) -> Option<&str> {
        self.user.image.as_deref()
    }
    /// The billing subscription (FREE and ACTIVE for someone who never subscribed).
    async fn subscription(&self, ctx: &Context<'_>) -> async_graphql::Result<BillingSubscription> {
        Ok(BillingSubscription(self.state(ctx).await?.billing.clone()))
    }
    /// Credit balance, free allowance and ledger.
    async fn credits(&self, ctx: &Context<'_>) -> async_graphql::Result<CreditAccount> {
        Ok(CreditAccount::new(
            ctx,
            self.state(ctx).await?.credits.clone(),
        )?)
    }
    /// One meter per metric for the current usage window.
    async fn usage(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UsageMeter>> {
        Ok(UsageMeter::of(self.state(ctx).await?))
    }
    /// What changed after `since` (a cursor from an earlier answer): jobs, purchases and
    /// notifications as they were at the answer's cursor, deleted jobs and uploads as ids,
    /// and the credits, subscription and usage when they changed; with the cursor to pass
    /// next. Without `since`: nothing, and the cursor of the moment the request began, before
    /// anything else it reads (read the page and this cursor in one request, then follow).
    /// `CURSOR_EXPIRED` when the cursor is older than the changes kept
    /// (`BFF_CHANGES_RETENTION_HOURS`) or not this viewer's: read the page again.
    async fn changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The cursor of the last answer applied.")] since: Option<String>,
    ) -> async_graphql::Result<ViewerChanges> {
        let state = self.state(ctx).await?;
        let Some(since) = since else {
            return Ok(ViewerChanges::none(state.versions.viewer));
        };
        let since = changes::position(&since)?;
        let allowance = context::jobs(ctx)?.free_photo_allowance;
        // In a snapshot of its own (the request's connection, alone meanwhile).
        let mut conn = context::conn(ctx).await?;
        changes::read_consistent(&mut conn, &self.user.id, Some(since), allowance)
            .await?
            .ok_or_else(|| AppError::Internal("the viewer's user row is gone".into()).into())
    }
    /// The viewer's photo jobs, newest first.
    async fn photo_jobs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many jobs, 0 to 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Which jobs to list.")] filter: Option<PhotoJobFilter>,
    ) -> async_graphql::Result<PhotoJobConnection> {
        Ok(photo_jobs::list(ctx, &self.user.id, first, after, filter).await?)
    }
    /// The viewer's credit purchases, newest first.
    async fn purchases(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many purchases, 0 to 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<PurchaseConnection> {
        Ok(purchases::list(ctx, &self.user.id, first, after).await?)
    }
    /// The viewer's notifications, newest first.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many notifications, 0 to 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(default = false, desc = "Only those not marked read.")] unread_only: bool,
    ) -> async_graphql::Result<NotificationConnection> {
        Ok(notifications::list(ctx, &self.user.id, first, after, unread_only).await?)
    }
    /// How many of the viewer's notifications are unread.
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        Ok(notifications::unread_count(ctx, &self.user.id).await?)
    }
    /// Which notifications reach the viewer by email and push, per kind.
    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<NotificationPreference>> {
        Ok(notifications::preferences(ctx, &self.user.id).await?)
    }
    /// One of the viewer's photo jobs; null for unknown ids and other people's jobs alike.
    async fn photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's global id.")] id: ID,
    ) -> async_graphql::Result<Option<PhotoJob>> {
        let Some(row) = row_id(&id, Kind::PhotoJob) else {
            return Ok(None);
        };
        let conn = read(ctx).await?;
        Ok(PhotoJobRow::find(&mut &**conn, &self.user.id, row)
            .await
            .map_err(AppError::from)?
            .map(PhotoJob::from))
    }
}
