//! What the billing operations share: the forms they send Stripe, the keys that make retries
//! safe, reading Stripe's answers, and mirroring a subscription Stripe changed.

use async_graphql::{Context, SimpleObject};
use chrono::Utc;
use serde_json::Value;

use crate::config::stripe::Stripe as StripeConfig;
use crate::db::plans::Plan as PlanRow;
use crate::db::pool::DbConn;
use crate::db::stripe::customers::customer_for_user;
use crate::db::stripe::subscriptions::apply_snapshot;
use crate::db::subscriptions::{BillingState, Subscription};
use crate::db::viewer::SessionUser;
use crate::error::AppError;
use crate::graphql::billing::BillingSubscription;
use crate::graphql::context::{conn, stripe, viewer_in_person};
use crate::stripe::client::StripeClient;
use crate::stripe::objects;
use crate::stripe::snapshot::Snapshot;
use diesel_async::AsyncPgConnection;

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
pub(super) fn stripe_key(user: &SessionUser, operation: &str, client_key: Option<&str>) -> String {
    let key = client_key
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    format!("bff-{operation}-{}-{key}", user.id)
}

pub(super) fn check_client_key(key: Option<&str>) -> Result<(), AppError> {
    match key {
        Some(k) if k.is_empty() || k.len() > 200 => Err(AppError::bad_input(
            "idempotencyKey must be 1 to 200 characters",
        )),
        _ => Ok(()),
    }
}

/// A Stripe form from string pairs.
pub(super) fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The viewer's billing state.
pub(super) async fn billing(conn: &mut DbConn, user_id: &str) -> Result<BillingState, AppError> {
    Ok(BillingState::load(conn, user_id).await?)
}

/// The Checkout Session form both purchases and subscriptions share.
pub(super) fn checkout_form(
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

/// The Checkout Session Stripe answered with: its page for the viewer, and what bff records.
pub(super) fn opened(
    response: &Value,
) -> Result<(CheckoutSession, objects::CheckoutSession), AppError> {
    let session: objects::CheckoutSession = objects::read(response);
    match (&session.id, &session.url) {
        (Some(id), Some(url)) => Ok((
            CheckoutSession {
                id: id.clone(),
                url: url.clone(),
            },
            session,
        )),
        _ => Err(AppError::Upstream(
            "The payment provider answered without a checkout page; try again".into(),
        )),
    }
}

/// When a Checkout Session stops being payable (a day, if Stripe does not say).
pub(super) fn expires_at(session: &objects::CheckoutSession) -> chrono::DateTime<Utc> {
    session
        .expires_at
        .unwrap_or_else(|| Utc::now() + chrono::Duration::hours(24))
}

/// The viewer's Stripe customer: the mapping from an earlier checkout, else the one on their
/// subscription.
pub(super) async fn customer(
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

/// The Stripe subscription while it is in good standing, or CONFLICT.
pub(crate) fn live_subscription(billing: &BillingState) -> Result<(&Subscription, &str), AppError> {
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
pub(crate) async fn mirror(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    response: &Value,
) -> Result<BillingState, AppError> {
    let snapshot = Snapshot::from_json(response).ok_or_else(|| {
        tracing::error!(%response, "Stripe answered with something that is not a subscription");
        AppError::Upstream("The payment provider answered unexpectedly; try again later".into())
    })?;
    let plan = match snapshot.price_id.as_deref() {
        Some(price) => PlanRow::for_price(&mut *conn, price).await?,
        None => None,
    };
    if let Some(plan) = plan {
        apply_snapshot(conn, user_id, plan, &snapshot, Utc::now()).await?;
    }
    Ok(BillingState::load(conn, user_id).await?)
}

/// Updates the viewer's Stripe subscription and mirrors Stripe's answer at once.
pub(super) async fn update_subscription(
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

/// Moves `user_id`'s Stripe subscription to `price`, prorated and no longer ending at the
/// period's end, and answers Stripe's subscription as it is then (to [`mirror`]): a viewer's
/// change of plan, and an admin's.
pub(crate) async fn switch_price(
    client: &StripeClient,
    user_id: &str,
    subscription_id: &str,
    price: &str,
    idempotency_key: &str,
) -> Result<Value, AppError> {
    let current = client
        .get(&format!("subscriptions/{subscription_id}"))
        .await?;
    let current: objects::Subscription = objects::read(&current);
    let Some(item) = current
        .items
        .data
        .first()
        .and_then(|item| item.id.as_deref())
    else {
        return Err(AppError::Upstream(
            "The payment provider answered unexpectedly; try again later".into(),
        ));
    };
    let fields = form(&[
        ("items[0][id]", item),
        ("items[0][price]", price),
        ("proration_behavior", "create_prorations"),
        ("cancel_at_period_end", "false"),
        ("metadata[user_id]", user_id),
    ]);
    Ok(client
        .post(
            &format!("subscriptions/{subscription_id}"),
            &fields,
            Some(idempotency_key),
        )
        .await?)
}

/// Sets `cancel_at_period_end` on the viewer's subscription.
pub(super) async fn set_cancel_at_period_end(
    ctx: &Context<'_>,
    cancel: bool,
    client_key: Option<String>,
) -> async_graphql::Result<BillingSubscription> {
    check_client_key(client_key.as_deref())?;
    let user = viewer_in_person(ctx, "change the subscription").await?;
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
