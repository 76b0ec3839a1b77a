//! The viewer's billing operations, which call Stripe's API. Money itself only moves when
//! Stripe's signed webhooks arrive (see `crate::stripe::events`); these operations start
//! checkouts and change subscriptions, and mirror Stripe's answer at once.

use crate::db::purchases::PurchaseStatus;
use async_graphql::{Context, Object, SimpleObject};
use chrono::Utc;
use diesel_async::AsyncConnection;
use serde_json::Value;

use super::billing::{BillingSubscription, Plan};
use super::context::{conn, stripe, viewer};
use crate::config::stripe::Stripe as StripeConfig;
use crate::db::plans::Plan as PlanRow;
use crate::db::pool::DbConn;
use crate::db::purchases::{CreditPack, NewPurchase};
use crate::db::stripe::subscriptions::apply_snapshot;
use crate::db::stripe::{checkouts, customers::customer_for_user};
use crate::db::subscriptions::{BillingState, Subscription};
use crate::db::viewer::SessionUser;
use crate::error::AppError;
use crate::stripe::client::StripeClient;
use crate::stripe::snapshot::Snapshot;

/// A Stripe Checkout page to send the viewer to.
#[derive(SimpleObject)]
pub(crate) struct CheckoutSession {
    /// Stripe's Checkout Session id (`cs_…`).
    pub id: String,
    /// The page to redirect the browser to.
    pub url: String,
}

/// The outcome of `subscribe`.
#[derive(SimpleObject)]
pub(crate) struct SubscribePayload {
    /// Where to pay, when the viewer has no subscription yet; null when an existing
    /// subscription was switched to the new plan.
    pub checkout: Option<CheckoutSession>,
    /// The viewer's subscription as it is now.
    pub subscription: BillingSubscription,
}

/// A Stripe idempotency key for one logical request of one viewer.
fn stripe_key(user: &SessionUser, operation: &str, client_key: Option<&str>) -> String {
    let key = client_key
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    format!("bff-{operation}-{}-{key}", user.id)
}

fn check_client_key(key: Option<&str>) -> Result<(), AppError> {
    match key {
        Some(k) if k.is_empty() || k.len() > 200 => Err(AppError::bad_input(
            "idempotencyKey must be 1 to 200 characters",
        )),
        _ => Ok(()),
    }
}

/// A Stripe form from string pairs.
fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The viewer's billing state.
async fn billing(conn: &mut DbConn, user_id: &str) -> Result<BillingState, AppError> {
    Ok(BillingState::load(conn, user_id).await?)
}

/// The Checkout Session form both purchases and subscriptions share.
fn checkout_form(
    mode: &str,
    price: &str,
    user: &SessionUser,
    customer: Option<String>,
    config: &StripeConfig,
) -> Vec<(String, String)> {
    let mut fields = form(&[
        ("mode", mode),
        ("line_items[0][price]", price),
        ("line_items[0][quantity]", "1"),
        ("client_reference_id", &user.id),
        ("metadata[user_id]", &user.id),
        ("success_url", &config.success_url),
        ("cancel_url", &config.cancel_url),
    ]);
    match customer {
        Some(customer) => fields.push(("customer".into(), customer)),
        None => {
            fields.push(("customer_email".into(), user.email.clone()));
            if mode == "payment" {
                fields.push(("customer_creation".into(), "always".into()));
            }
        }
    }
    fields
}

/// When a Checkout Session Stripe answered with stops being payable (a day, if it does not say).
fn expires_at(response: &Value) -> chrono::DateTime<Utc> {
    response["expires_at"]
        .as_i64()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .unwrap_or_else(|| Utc::now() + chrono::Duration::hours(24))
}

fn checkout_session(response: &Value) -> Result<CheckoutSession, AppError> {
    match (response["id"].as_str(), response["url"].as_str()) {
        (Some(id), Some(url)) => Ok(CheckoutSession {
            id: id.to_owned(),
            url: url.to_owned(),
        }),
        _ => Err(AppError::Upstream(
            "The payment provider answered without a checkout page; try again".into(),
        )),
    }
}

/// The viewer's Stripe customer: the mapping from an earlier checkout, else the one on their
/// subscription.
async fn customer(
    conn: &mut DbConn,
    user_id: &str,
    billing: &BillingState,
) -> Result<Option<String>, AppError> {
    if let Some(customer) = customer_for_user(conn, user_id).await? {
        return Ok(Some(customer));
    }
    Ok(billing
        .subscription
        .as_ref()
        .and_then(|s| s.stripe_customer_id.clone()))
}

/// The viewer's Stripe subscription while it is in good standing, or CONFLICT.
fn live_subscription(billing: &BillingState) -> Result<(&Subscription, &str), AppError> {
    billing
        .subscription
        .as_ref()
        .filter(|s| s.in_good_standing())
        .and_then(|s| Some((s, s.stripe_subscription_id.as_deref()?)))
        .ok_or_else(|| {
            AppError::Conflict("there is no active subscription to change; subscribe first".into())
        })
}

/// Mirrors the subscription Stripe answered with, then reloads the billing state.
async fn mirror(
    conn: &mut DbConn,
    user_id: &str,
    response: &Value,
) -> Result<BillingState, AppError> {
    let snapshot = Snapshot::from_json(response).ok_or_else(|| {
        tracing::error!(%response, "Stripe answered with something that is not a subscription");
        AppError::Upstream("The payment provider answered unexpectedly; try again later".into())
    })?;
    let plan = match snapshot.price_id.as_deref() {
        Some(price) => PlanRow::for_price(&mut **conn, price).await?,
        None => None,
    };
    if let Some(plan) = plan {
        apply_snapshot(conn, user_id, plan, &snapshot, Utc::now()).await?;
    }
    Ok(BillingState::load(conn, user_id).await?)
}

/// Updates the viewer's Stripe subscription and mirrors Stripe's answer at once.
async fn update_subscription(
    client: &StripeClient,
    conn: &mut DbConn,
    user_id: &str,
    subscription_id: &str,
    fields: &[(String, String)],
    idempotency_key: &str,
) -> Result<BillingState, AppError> {
    let response = client
        .post(
            &format!("subscriptions/{subscription_id}"),
            fields,
            Some(idempotency_key),
        )
        .await?;
    mirror(conn, user_id, &response).await
}

/// Sets `cancel_at_period_end` on the viewer's subscription.
async fn set_cancel_at_period_end(
    ctx: &Context<'_>,
    cancel: bool,
    client_key: Option<String>,
) -> async_graphql::Result<BillingSubscription> {
    check_client_key(client_key.as_deref())?;
    let user = viewer(ctx).await?;
    let (client, _) = stripe(ctx)?;
    let mut conn = conn(ctx).await?;
    let billing = billing(&mut conn, &user.id).await?;
    let (_, subscription_id) = live_subscription(&billing)?;
    let fields = form(&[(
        "cancel_at_period_end",
        if cancel { "true" } else { "false" },
    )]);
    let operation = if cancel { "cancel" } else { "resume" };
    let key = stripe_key(&user, operation, client_key.as_deref());
    let billing =
        update_subscription(client, &mut conn, &user.id, subscription_id, &fields, &key).await?;
    Ok(BillingSubscription(billing))
}

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
        let user = viewer(ctx).await?;
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
        let session = checkout_session(&response)?;
        let purchase = NewPurchase {
            user_id: &user.id,
            stripe_checkout_session_id: &session.id,
            pack: &chosen.code,
            amount_cents: response["amount_total"].as_i64().unwrap_or(0).max(0),
            currency: response["currency"].as_str().unwrap_or("usd"),
            credits_cents: chosen.credits_cents,
            status: PurchaseStatus::Pending,
        };
        conn.transaction(async |conn| {
            purchase.insert(conn).await?;
            checkouts::record(
                conn,
                &session.id,
                &user.id,
                "payment",
                expires_at(&response),
            )
            .await
        })
        .await
        .map_err(AppError::from)?;
        Ok(session)
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
        let user = viewer(ctx).await?;
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
            let stripe_subscription = client
                .get(&format!("subscriptions/{subscription_id}"))
                .await
                .map_err(AppError::from)?;
            let Some(item) = stripe_subscription["items"]["data"][0]["id"].as_str() else {
                return Err(AppError::Upstream(
                    "The payment provider answered unexpectedly; try again later".into(),
                )
                .into());
            };
            let fields = form(&[
                ("items[0][id]", item),
                ("items[0][price]", price.as_str()),
                ("proration_behavior", "create_prorations"),
                ("cancel_at_period_end", "false"),
                ("metadata[user_id]", user.id.as_str()),
            ]);
            let billing =
                update_subscription(client, &mut conn, &user.id, subscription_id, &fields, &key)
                    .await?;
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
        let checkout = checkout_session(&response)?;
        checkouts::record(
            &mut conn,
            &checkout.id,
            &user.id,
            "subscription",
            expires_at(&response),
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
        let user = viewer(ctx).await?;
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
        response["url"].as_str().map(str::to_owned).ok_or_else(|| {
            AppError::Upstream("The payment provider answered without a portal link".into()).into()
        })
    }
}
