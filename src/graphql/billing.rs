//! The viewer's subscription, entitlements and usage.

pub(crate) use crate::db::subscriptions::SubscriptionStatus;
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{conn, viewer_id};
use super::scalars::Decimal;
use crate::db::plans::Plan as PlanRow;
use crate::db::states::db_enum;
use crate::db::subscriptions::BillingState;
use crate::db::subscriptions::history::{self, HistoryKind as BillingHistoryKind};
use crate::db::usage::Window;
use crate::error::{AppError, AppResult};

pub(crate) use crate::db::plans::PlanCode as Plan;

/// What a plan allows.
#[derive(SimpleObject)]
pub(crate) struct Entitlements {
    /// The plan these entitlements come from.
    pub plan: Plan,
    /// Photos per usage window; null is unlimited.
    pub monthly_photo_quota: Option<i32>,
    /// Credits one photo costs beyond the free allowance.
    pub price_per_photo: Decimal,
    /// Most photos one job may have.
    pub max_photos_per_job: i32,
}

impl Entitlements {
    /// The entitlements of a plan row.
    pub(crate) fn of(plan: &PlanRow) -> AppResult<Self> {
        Ok(Entitlements {
            plan: plan.code,
            monthly_photo_quota: plan.monthly_photo_quota,
            price_per_photo: Decimal(plan.price_per_photo_cents),
            max_photos_per_job: plan.max_photos_per_job,
        })
    }
}

/// The viewer's billing subscription. Someone who never subscribed is on FREE, ACTIVE.
#[derive(Clone)]
pub(crate) struct BillingSubscription(pub BillingState);

/// The viewer's billing subscription. Someone who never subscribed is on FREE, ACTIVE.
#[Object]
impl BillingSubscription {
    /// The plan subscribed to.
    async fn plan(&self) -> Plan {
        self.0.subscribed_plan.code
    }
    /// The subscription's state.
    async fn status(&self) -> async_graphql::Result<SubscriptionStatus> {
        Ok(match &self.0.subscription {
            Some(s) => s.status,
            None => SubscriptionStatus::Active,
        })
    }
    /// Start of the current paid period.
    async fn current_period_start(&self) -> Option<DateTime<Utc>> {
        self.0.subscription.as_ref()?.current_period_start
    }
    /// End of the current paid period (renewal or cancellation date).
    async fn current_period_end(&self) -> Option<DateTime<Utc>> {
        self.0.subscription.as_ref()?.current_period_end
    }
    /// Whether the subscription ends when the current period does.
    async fn cancel_at_period_end(&self) -> bool {
        self.0
            .subscription
            .as_ref()
            .is_some_and(|s| s.cancel_at_period_end)
    }
    /// When the subscription was canceled.
    async fn canceled_at(&self) -> Option<DateTime<Utc>> {
        self.0.subscription.as_ref()?.canceled_at
    }
    /// When the trial ends.
    async fn trial_ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.subscription.as_ref()?.trial_end
    }
    /// What the viewer may do now: the subscribed plan's entitlements while the subscription
    /// is ACTIVE, TRIALING or PAST_DUE, the FREE plan's otherwise.
    async fn entitlements(&self) -> async_graphql::Result<Entitlements> {
        Ok(Entitlements::of(&self.0.effective_plan)?)
    }
    /// What happened to the subscription's money, newest first: invoices paid and failed, and
    /// refunds of invoice payments. Access follows the subscription's status, not these.
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many entries, newest first (1 to 100).", default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<BillingHistoryEntry>> {
        if !(1..=100).contains(&first) {
            return Err(AppError::BadUserInput("first must be from 1 to 100".into()).into());
        }
        let user_id = viewer_id(ctx).await?;
        let mut conn = conn(ctx).await?;
        let rows = history::of_user(&mut conn, &user_id, i64::from(first))
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|row| BillingHistoryEntry {
                kind: row.kind,
                amount: Decimal(row.amount_cents),
                currency: row.currency,
                occurred_at: row.occurred_at,
            })
            .collect())
    }
}

/// One entry of a subscription's billing history.
#[derive(SimpleObject)]
pub(crate) struct BillingHistoryEntry {
    /// What happened.
    pub kind: BillingHistoryKind,
    /// The invoice's amount; for a refund, all of the payment refunded so far.
    pub amount: Decimal,
    /// ISO 4217 currency code, lower-case as Stripe writes it (`usd`).
    pub currency: String,
    /// When Stripe reported it.
    pub occurred_at: DateTime<Utc>,
}

db_enum! {
    /// A metered resource.
    UsageMetric {
        /// Photos in created jobs.
        Photos => "PHOTOS",
        /// Bytes kept in photo storage: uploaded photos (attached to a job or waiting for one)
        /// and job results. A level, not a flow: it goes down when jobs are deleted and
        /// unattached uploads expire, and it does not reset with the window.
        StorageBytes => "STORAGE_BYTES",
    }
}

/// Use of one metric in the current usage window.
#[derive(SimpleObject, Clone)]
pub(crate) struct UsageMeter {
    /// What is metered.
    pub metric: UsageMetric,
    /// How much was used in this window (STORAGE_BYTES: how much is kept now). Byte counts
    /// can exceed 2^31 but stay below 2^53, so JavaScript numbers hold them exactly.
    pub used: i64,
    /// The plan's limit for the window; null is unlimited.
    pub limit: Option<i64>,
    /// What is left of the limit (never negative); null is unlimited.
    pub remaining: Option<i64>,
    /// Start of the window: the paid period's, or the calendar month's (UTC).
    pub window_start: DateTime<Utc>,
    /// End of the window (exclusive).
    pub window_end: DateTime<Utc>,
}

impl UsageMeter {
    /// The viewer's meters as of `state`: photos, and bytes kept in storage.
    pub(crate) fn of(state: &crate::db::viewer::ViewerState) -> Vec<UsageMeter> {
        let plan = &state.billing.effective_plan;
        vec![
            UsageMeter::photos(
                state.photos_used,
                plan.monthly_photo_quota,
                state.usage_window,
            ),
            UsageMeter::new(
                UsageMetric::StorageBytes,
                state.storage_used,
                plan.storage_bytes_limit,
                state.usage_window,
            ),
        ]
    }

    /// A photos meter.
    pub(crate) fn photos(used: i32, limit: Option<i32>, window: Window) -> Self {
        Self::new(
            UsageMetric::Photos,
            i64::from(used),
            limit.map(i64::from),
            window,
        )
    }

    /// A meter of `metric`.
    pub(crate) fn new(metric: UsageMetric, used: i64, limit: Option<i64>, window: Window) -> Self {
        UsageMeter {
            metric,
            used,
            limit,
            remaining: limit.map(|l| (l - used).max(0)),
            window_start: window.start,
            window_end: window.end,
        }
    }
}
