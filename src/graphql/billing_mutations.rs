//! The viewer's billing operations, which call Stripe's API. Money itself only moves when
//! Stripe's signed webhooks arrive (see `crate::stripe::events`); these operations start
//! checkouts and change subscriptions, and mirror Stripe's answer at once.

pub(crate) mod stripe_calls;

use async_graphql::{Context, Object};
use diesel_async::AsyncConnection;

use super::billing::{BillingSubscription, Plan};
use super::context::{conn, stripe, viewer_in_person};
use crate::db::plans::Plan as PlanRow;
use crate::db::purchases::{CreditPack, NewPurchase, PurchaseStatus};
use crate::db::stripe::checkouts;
use crate::error::AppError;
use crate::stripe::objects;
pub(crate) use stripe_calls::{CheckoutSession, SubscribePayload};
use stripe_calls::{
    billing, check_client_key, checkout_form, customer, expires_at, form, live_subscription,
    mirror, opened, set_cancel_at_period_end, stripe_key, switch_price,
};

/// The viewer's billing operations (they call Stripe).
#[derive(Default)]
pub(crate) struct BillingMutation;

/// The viewer's billing operations (they call Stripe).
#[Object]
impl BillingMutation {
    /// Starts a Stripe Checkout for a credit pack (mode payment, `client_reference_id` = the
    /// viewer). The credits are added when Stripe confirms the payment (webhook), exactly once.
    async fn purchase_credits(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The pack's code, e.g. SMALL (see creditPacks).")] pack: String,
        #[graphql(desc = "Makes retries return the same checkout.")] idempotency_key: Option<
            String,
        >,
    ) -> async_graphql::Result<CheckoutSession> {
        check_client_key(idempotency_key.as_deref())?;
        let user = viewer_in_person(ctx, "buy credits").await?;
        let (client, config) = stripe(ctx)?;
        let mut conn = conn(ctx).await?;
        let packs = CreditPack::for_sale(&mut conn)
            .await
            .map_err(AppError::from)?;
        let Some(chosen) = packs.iter().find(|p| p.code == pack) else {
            let on_sale: Vec<&str> = packs.iter().map(|p| p.code.as_str()).collect();
            return Err(AppError::bad_input(format!(
                "pack {pack:?} is not for sale; choose one of {on_sale:?}"
            ))
            .into());
        };
        let price = chosen.stripe_price_id.as_deref().unwrap_or_default();
        let billing = billing(&mut conn, &user.id).await?;
        let customer = customer(&mut conn, &user.id, &billing).await?;
        let mut fields = checkout_form("payment", price, &user, customer, config);
        fields.push(("metadata[pack]".into(), chosen.code.clone()));
        fields.push((
            "payment_intent_data[metadata][user_id]".into(),
            user.id.clone(),
        ));
        let key = stripe_key(&user, "purchase", idempotency_key.as_deref());
        let response = client
            .post("checkout/sessions", &fields, Some(&key))
            .await
            .map_err(AppError::from)?;
        let (page, session) = opened(&response)?;
        let purchase = NewPurchase {
            user_id: &user.id,
            stripe_checkout_session_id: &page.id,
            pack: &chosen.code,
            amount_cents: session.amount_total.unwrap_or(0).max(0),
            currency: session.currency.as_deref().unwrap_or("usd"),
            credits_cents: chosen.credits_cents,
            status: PurchaseStatus::Pending,
        };
        conn.transaction(async |conn| {
            purchase.insert(conn).await?;
            checkouts::record(conn, &page.id, &user.id, "payment", expires_at(&session)).await
        })
        .await
        .map_err(AppError::from)?;
        Ok(page)
    }

    /// Subscribes to a paid plan: a Checkout page when the viewer has no subscription, or a
    /// change of plan (prorated) on the existing one. Stripe's webhooks keep the result in sync.
    async fn subscribe(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The plan to subscribe to (not FREE).")] plan: Plan,
        #[graphql(desc = "Makes retries safe.")] idempotency_key: Option<String>,
    ) -> async_graphql::Result<SubscribePayload> {
        check_client_key(idempotency_key.as_deref())?;
        let user = viewer_in_person(ctx, "change the subscription").await?;
        let (client, config) = stripe(ctx)?;
        let mut conn = conn(ctx).await?;
        let target = PlanRow::find(&mut *conn, plan)
            .await
            .map_err(AppError::from)?;
        let Some(price) = target.stripe_price_id.clone() else {
            return Err(AppError::bad_input(format!(
                "the {} plan is not sold through Stripe (to leave a paid plan, cancelSubscription)",
                target.name
            ))
            .into());
        };
        let billing = billing(&mut conn, &user.id).await?;
        let key = stripe_key(&user, "subscribe", idempotency_key.as_deref());
        if let Ok((current, subscription_id)) = live_subscription(&billing) {
            if current.plan == target.code && !current.cancel_at_period_end {
                return Err(
                    AppError::Conflict(format!("already subscribed to {}", target.name)).into(),
                );
            }
            let response = switch_price(client, &user.id, subscription_id, &price, &key).await?;
            let billing = mirror(&mut conn, &user.id, &response).await?;
            return Ok(SubscribePayload {
                checkout: None,
                subscription: BillingSubscription(billing),
            });
        }
        let customer = customer(&mut conn, &user.id, &billing).await?;
        let mut fields = checkout_form("subscription", &price, &user, customer, config);
        fields.push((
            "subscription_data[metadata][user_id]".into(),
            user.id.clone(),
        ));
        let response = client
            .post("checkout/sessions", &fields, Some(&key))
            .await
            .map_err(AppError::from)?;
        let (checkout, session) = opened(&response)?;
        checkouts::record(
            &mut conn,
            &checkout.id,
            &user.id,
            "subscription",
            expires_at(&session),
        )
        .await
        .map_err(AppError::from)?;
        Ok(SubscribePayload {
            checkout: Some(checkout),
            subscription: BillingSubscription(billing),
        })
    }

    /// Cancels the subscription at the end of the current period (it stays active until then).
    async fn cancel_subscription(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Makes retries safe.")] idempotency_key: Option<String>,
    ) -> async_graphql::Result<BillingSubscription> {
        set_cancel_at_period_end(ctx, true, idempotency_key).await
    }

    /// Undoes `cancelSubscription` before the period ends.
    async fn resume_subscription(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Makes retries safe.")] idempotency_key: Option<String>,
    ) -> async_graphql::Result<BillingSubscription> {
        set_cancel_at_period_end(ctx, false, idempotency_key).await
    }

    /// A link to Stripe's billing portal (invoices, payment methods) for the viewer. CONFLICT
    /// before the viewer has bought anything.
    async fn billing_portal_url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let user = viewer_in_person(ctx, "open the billing portal").await?;
        let (client, config) = stripe(ctx)?;
        let mut conn = conn(ctx).await?;
        let billing = billing(&mut conn, &user.id).await?;
        let Some(customer) = customer(&mut conn, &user.id, &billing).await? else {
            return Err(AppError::Conflict(
                "there is no billing account yet: buy credits or subscribe first".into(),
            )
            .into());
        };
        let fields = form(&[
            ("customer", &customer),
            ("return_url", &config.portal_return_url),
        ]);
        let response = client
            .post("billing_portal/sessions", &fields, None)
            .await
            .map_err(AppError::from)?;
        let portal: objects::PortalSession = objects::read(&response);
        portal.url.ok_or_else(|| {
            AppError::Upstream("The payment provider answered without a portal link".into()).into()
        })
    }
}
