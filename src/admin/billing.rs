//! Plan changes by an admin: the person's Stripe subscription moved to another paid plan, the
//! way `subscribe` moves it when they change it themselves (prorated by Stripe). Stripe is
//! called first; its answer, mirrored, and the audit row then commit in one transaction, so a
//! refused or failed call changes nothing and writes no row.

use async_graphql::{Context, ID, InputObject, Object};
use diesel_async::AsyncConnection;
use serde_json::json;

use super::account::Subscription;
use super::mutation::{action, reason, target};
use super::staff::Staff;
use crate::db::admin::{account, audit};
use crate::db::plans::{Plan as PlanRow, PlanCode};
use crate::db::subscriptions::BillingState;
use crate::error::AppError;
use crate::graphql::billing_mutations::stripe_calls::{live_subscription, mirror, switch_price};
use crate::graphql::context::{conn, data, stripe};

/// The administration's billing operations.
#[derive(Default)]
pub struct PlanMutation;

/// A plan change.
#[derive(InputObject)]
struct ChangePlanInput {
    /// Whose subscription.
    user_id: ID,
    /// The paid plan to move it to (not `FREE`: to end a subscription, the person cancels it).
    plan: PlanCode,
    /// Why (kept in the audit trail; required).
    reason: String,
}

/// The administration's billing operations.
#[Object]
impl PlanMutation {
    /// Moves a person's subscription to another paid plan (admins only), prorated as when
    /// they change it themselves. It must be in good standing (`CONFLICT` otherwise): a new
    /// subscription starts only with the person's own payment.
    async fn change_plan(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose subscription, which plan, and why.")] input: ChangePlanInput,
    ) -> async_graphql::Result<Subscription> {
        let staff = data::<Staff>(ctx, "staff")?;
        staff.require_admin("change plans")?;
        let why = reason(&input.reason)?;
        let (client, _) = stripe(ctx)?;
        let mut conn = conn(ctx).await?;
        let person = crate::db::admin::person(&mut *conn, &input.user_id)
            .await
            .map_err(AppError::from)?
            .ok_or(AppError::NotFoundAt {
                what: "user",
                field: "userId".into(),
            })?;
        let plan = PlanRow::find(&mut *conn, input.plan)
            .await
            .map_err(AppError::from)?;
        let Some(price) = plan.stripe_price_id.clone() else {
            return Err(AppError::invalid_field(
                "plan",
                format!("the {} plan is not sold through Stripe", plan.name),
            )
            .into());
        };
        let billing = BillingState::load(&mut *conn, &person.id)
            .await
            .map_err(AppError::from)?;
        let (current, subscription_id) = live_subscription(&billing)?;
        if current.plan == plan.code {
            return Err(AppError::Conflict(format!("they are already on {}", plan.name)).into());
        }
        let before =
            json!({ "plan": current.plan.to_string(), "stripeSubscriptionId": subscription_id });
        let key = format!("bff-admin-plan-{}-{}", person.id, uuid::Uuid::new_v4());
        let response = switch_price(client, &person.id, subscription_id, &price, &key).await?;
        let subscription = conn
            .transaction(async |conn| {
                target(conn, &person.id).await?;
                let after = mirror(conn, &person.id, &response).await?;
                let row = account::subscription(conn, &person.id).await?;
                audit::record(
                    conn,
                    &action(
                        staff,
                        &person.id,
                        "CHANGE_PLAN",
                        &why,
                        before,
                        json!({ "plan": after.subscribed_plan.code.to_string(), "stripeSubscriptionId": subscription_id }),
                    ),
                )
                .await?;
                Ok::<_, AppError>(row)
            })
            .await?;
        subscription.map(Subscription::of).ok_or_else(|| {
            AppError::Internal("the subscription vanished while it was changed".into()).into()
        })
    }
}
