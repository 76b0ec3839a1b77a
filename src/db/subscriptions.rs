//! Billing subscriptions (one per user) and the plan in force.

pub(crate) mod history;

use crate::db::states::db_enum;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::plans::{self, Plan, PlanCode};
use crate::db::schema::{plans as plans_table, subscriptions};

db_enum! {
    /// A subscription's state, as Stripe reports it.
    SubscriptionStatus {
        /// Paid and current.
        Active => "ACTIVE",
        /// In a free trial.
        Trialing => "TRIALING",
        /// The last payment failed; Stripe is retrying. Entitlements still apply.
        PastDue => "PAST_DUE",
        /// Ended.
        Canceled => "CANCELED",
        /// Payment retries are exhausted.
        Unpaid => "UNPAID",
        /// The first payment has not succeeded yet.
        Incomplete => "INCOMPLETE",
        /// The first payment never succeeded.
        IncompleteExpired => "INCOMPLETE_EXPIRED",
        /// Paused.
        Paused => "PAUSED",
    }
}

/// A user's subscription row, mirrored from Stripe.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = subscriptions, check_for_backend(diesel::pg::Pg))]
pub struct Subscription {
    /// Owner.
    pub user_id: String,
    /// Plan code subscribed to.
    pub plan: PlanCode,
    /// Stripe's status, upper-cased.
    pub status: SubscriptionStatus,
    /// Stripe customer id.
    pub stripe_customer_id: Option<String>,
    /// Stripe subscription id.
    pub stripe_subscription_id: Option<String>,
    /// Stripe price id.
    pub stripe_price_id: Option<String>,
    /// Start of the paid period.
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the paid period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// End of the trial.
    pub trial_end: Option<DateTime<Utc>>,
    /// Whether it ends when the period does.
    pub cancel_at_period_end: bool,
    /// When it was canceled.
    pub canceled_at: Option<DateTime<Utc>>,
}

/// Statuses whose plan's entitlements are in force.
pub(crate) const GOOD_STANDING: [SubscriptionStatus; 3] = [
    SubscriptionStatus::Active,
    SubscriptionStatus::Trialing,
    SubscriptionStatus::PastDue,
];

impl Subscription {
    /// Whether the subscribed plan's entitlements apply.
    pub fn in_good_standing(&self) -> bool {
        GOOD_STANDING.contains(&self.status)
    }
}

/// A user's billing state: their subscription row, if any, and the plan whose entitlements
/// are in force (FREE without a subscription in good standing).
#[derive(Clone, Debug)]
pub struct BillingState {
    /// The row, if the user ever subscribed.
    pub subscription: Option<Subscription>,
    /// The subscribed plan (FREE without a row).
    pub subscribed_plan: Plan,
    /// The plan whose entitlements apply now.
    pub effective_plan: Plan,
}

impl BillingState {
    /// Loads the viewer's billing state in one query (two without a subscription row).
    pub async fn load(
        conn: &mut impl crate::db::request::Db,
        user_id: &str,
    ) -> QueryResult<BillingState> {
        let row = subscriptions::table
            .inner_join(plans_table::table)
            .filter(subscriptions::user_id.eq(user_id))
            .select((Subscription::as_select(), Plan::as_select()))
            .first::<(Subscription, Plan)>(conn)
            .await
            .optional()?;
        // FREE is read only when it applies (the subscribed plan stands in for it otherwise).
        let free = match &row {
            Some((subscription, plan)) if subscription.in_good_standing() => plan.clone(),
            _ => Plan::find(conn, plans::FREE).await?,
        };
        let (subscription, plan) = row.unzip();
        Ok(BillingState::from_rows(subscription, plan, free))
    }

    /// The state from the subscription row and its plan, if any, and the FREE plan.
    pub fn from_rows(
        subscription: Option<Subscription>,
        subscribed_plan: Option<Plan>,
        free: Plan,
    ) -> BillingState {
        let effective_plan = match (&subscription, &subscribed_plan) {
            (Some(s), Some(plan)) if s.in_good_standing() => plan.clone(),
            _ => free.clone(),
        };
        BillingState {
            subscription,
            subscribed_plan: subscribed_plan.unwrap_or(free),
            effective_plan,
        }
    }
}
