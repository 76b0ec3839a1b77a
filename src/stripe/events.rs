//! What each Stripe event does. [`handle`] records the event id and applies its effect in one
//! transaction: a redelivery (sequential or concurrent — the second insert waits on the first's
//! row and then finds it) changes nothing; a failure commits nothing, so Stripe's retry can
//! succeed later. Events bff cannot act on (unknown type, unknown customer, unknown price) are
//! recorded with that outcome and logged, never retried forever.

use crate::db::credits::CreditTransactionKind;
use crate::db::purchases::PurchaseStatus;
use crate::db::subscriptions::SubscriptionStatus;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::db::better_auth::users;
use crate::db::credits::{Change, CreditAccount};
use crate::db::schema::{credit_packs, purchases, stripe_customers, stripe_events, subscriptions};
use crate::stripe::snapshot::{self, Snapshot, customer_id, timestamp};

/// An event as Stripe sends it (the fields bff reads).
#[derive(Debug, Clone)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// e.g. `checkout.session.completed`.
    pub kind: String,
    /// When Stripe created it.
    pub created: DateTime<Utc>,
    /// Live or test mode.
    pub livemode: bool,
    /// `data.object`.
    pub object: Value,
}

impl Event {
    /// Reads a verified payload; `None` when it is not an event.
    pub fn from_json(body: &Value) -> Option<Event> {
        Some(Event {
            id: body["id"].as_str().filter(|id| !id.is_empty())?.to_owned(),
            kind: body["type"].as_str()?.to_owned(),
            created: timestamp(&body["created"]).unwrap_or_else(Utc::now),
            livemode: body["livemode"].as_bool().unwrap_or(false),
            object: body["data"]["object"].clone(),
        })
    }
}

/// What happened to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// First delivery; the outcome was recorded.
    Recorded(String),
    /// Seen before: nothing was done.
    Duplicate,
}

/// Records `event` and applies its effect, in one transaction.
pub async fn handle(conn: &mut AsyncPgConnection, event: &Event) -> QueryResult<Handled> {
    conn.transaction(async |conn| {
        let inserted = diesel::insert_into(stripe_events::table)
            .values((
                stripe_events::id.eq(&event.id),
                stripe_events::type_.eq(&event.kind),
                stripe_events::created_at.eq(event.created),
                stripe_events::livemode.eq(event.livemode),
                stripe_events::outcome.eq("processing"),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if inserted == 0 {
            return Ok(Handled::Duplicate);
        }
        let outcome = apply(conn, event).await?;
        if outcome != "applied" {
            tracing::warn!(event = %event.id, kind = %event.kind, %outcome, "Stripe event not applied");
        }
        diesel::update(stripe_events::table.find(&event.id))
            .set(stripe_events::outcome.eq(&outcome))
            .execute(conn)
            .await?;
        Ok(Handled::Recorded(outcome))
    })
    .await
}

async fn apply(conn: &mut AsyncPgConnection, event: &Event) -> QueryResult<String> {
    let object = &event.object;
    match event.kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            checkout_completed(conn, object).await
        }
        "checkout.session.async_payment_failed" | "checkout.session.expired" => {
            checkout_failed(conn, object).await
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            subscription_changed(conn, object, event.created).await
        }
        "invoice.paid" => invoice_paid(conn, object, event.created).await,
        "invoice.payment_failed" => invoice_failed(conn, object, event.created).await,
        _ => Ok("ignored".into()),
    }
}

async fn user_exists(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<bool> {
    users::table
        .find(user_id)
        .count()
        .get_result::<i64>(conn)
        .await
        .map(|n| n > 0)
}

/// The user a customer belongs to.
pub async fn user_for_customer(
    conn: &mut AsyncPgConnection,
    customer: &str,
) -> QueryResult<Option<String>> {
    stripe_customers::table
        .filter(stripe_customers::customer_id.eq(customer))
        .select(stripe_customers::user_id)
        .first(conn)
        .await
        .optional()
}

/// The customer of a user.
pub async fn customer_for_user(
    conn: &mut AsyncPgConnection,
    user_id: &str,
) -> QueryResult<Option<String>> {
    stripe_customers::table
        .find(user_id)
        .select(stripe_customers::customer_id)
        .first(conn)
        .await
        .optional()
}

async fn remember_customer(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    customer: &str,
) -> QueryResult<()> {
    diesel::insert_into(stripe_customers::table)
        .values((
            stripe_customers::user_id.eq(user_id),
            stripe_customers::customer_id.eq(customer),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|_| ())
}

/// The user of a Checkout Session: `client_reference_id` (set by bff), else
/// `metadata.user_id`, else the customer's known user.
async fn checkout_user(
    conn: &mut AsyncPgConnection,
    session: &Value,
) -> QueryResult<Option<String>> {
    for candidate in [
        &session["client_reference_id"],
        &session["metadata"]["user_id"],
    ] {
        if let Some(user_id) = candidate.as_str()
            && user_exists(conn, user_id).await?
        {
            return Ok(Some(user_id.to_owned()));
        }
    }
    match customer_id(&session["customer"]) {
        Some(customer) => user_for_customer(conn, &customer).await,
        None => Ok(None),
    }
}

async fn checkout_completed(conn: &mut AsyncPgConnection, session: &Value) -> QueryResult<String> {
    let Some(session_id) = session["id"].as_str() else {
        return Ok("malformed".into());
    };
    let Some(user_id) = checkout_user(conn, session).await? else {
        return Ok("unknown_customer".into());
    };
    if let Some(customer) = customer_id(&session["customer"]) {
        remember_customer(conn, &user_id, &customer).await?;
    }
    if session["mode"].as_str() != Some("payment") {
        // Subscriptions take effect through customer.subscription.* events.
        return Ok("applied".into());
    }
    let Some(pack) = session["metadata"]["pack"].as_str() else {
        return Ok("not_a_credit_pack".into());
    };
    let Some(credits_cents) = credit_packs::table
        .find(pack)
        .select(credit_packs::credits_cents)
        .first::<i64>(conn)
        .await
        .optional()?
    else {
        return Ok("unknown_pack".into());
    };
    diesel::insert_into(purchases::table)
        .values((
            purchases::user_id.eq(&user_id),
            purchases::stripe_checkout_session_id.eq(session_id),
            purchases::pack.eq(pack),
            purchases::amount_cents.eq(session["amount_total"].as_i64().unwrap_or(0).max(0)),
            purchases::currency.eq(session["currency"].as_str().unwrap_or("usd")),
            purchases::credits_cents.eq(credits_cents),
            purchases::status.eq(PurchaseStatus::Pending),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    let paid = matches!(
        session["payment_status"].as_str(),
        Some("paid" | "no_payment_required")
    );
    if !paid {
        return Ok("awaiting_payment".into());
    }
    // Completing the purchase is conditional, so only one event ever grants its credits
    // (and the ledger's unique index on purchase_id backs that up).
    let completed: Option<(i64, String, i64)> = diesel::update(
        purchases::table
            .filter(purchases::stripe_checkout_session_id.eq(session_id))
            .filter(purchases::status.ne(PurchaseStatus::Completed)),
    )
    .set((
        purchases::status.eq(PurchaseStatus::Completed),
        purchases::completed_at.eq(Some(Utc::now())),
        purchases::stripe_payment_intent_id.eq(session["payment_intent"].as_str()),
    ))
    .returning((purchases::id, purchases::user_id, purchases::credits_cents))
    .get_result(conn)
    .await
    .optional()?;
    let Some((purchase_id, owner, credits)) = completed else {
        return Ok("already_granted".into());
    };
    CreditAccount::lock(conn, &owner).await?;
    let description = format!("Credit pack {pack}");
    let change = Change {
        user_id: &owner,
        kind: CreditTransactionKind::Purchase,
        amount_cents: credits,
        description: &description,
        photo_job_id: None,
        purchase_id: Some(purchase_id),
    };
    CreditAccount::apply(conn, &change).await?;
    Ok("applied".into())
}

async fn checkout_failed(conn: &mut AsyncPgConnection, session: &Value) -> QueryResult<String> {
    let Some(session_id) = session["id"].as_str() else {
        return Ok("malformed".into());
    };
    let changed = diesel::update(
        purchases::table
            .filter(purchases::stripe_checkout_session_id.eq(session_id))
            .filter(purchases::status.eq(PurchaseStatus::Pending)),
    )
    .set(purchases::status.eq(PurchaseStatus::Failed))
    .execute(conn)
    .await?;
    Ok(if changed > 0 {
        "applied"
    } else {
        "no_pending_purchase"
    }
    .into())
}

async fn subscription_changed(
    conn: &mut AsyncPgConnection,
    object: &Value,
    created: DateTime<Utc>,
) -> QueryResult<String> {
    let Some(snapshot) = Snapshot::from_json(object) else {
        return Ok("malformed".into());
    };
    let mut user_id = match &snapshot.customer_id {
        Some(customer) => user_for_customer(conn, customer).await?,
        None => None,
    };
    if user_id.is_none()
        && let Some(candidate) = &snapshot.user_id
        && user_exists(conn, candidate).await?
    {
        if let Some(customer) = &snapshot.customer_id {
            remember_customer(conn, candidate, customer).await?;
        }
        user_id = Some(candidate.clone());
    }
    let Some(user_id) = user_id else {
        return Ok("unknown_customer".into());
    };
    let Some(price) = &snapshot.price_id else {
        return Ok("malformed".into());
    };
    let Some(plan) = snapshot::plan_for_price(conn, price).await? else {
        tracing::error!(%price, "a subscription's price is not any plan's stripe_price_id");
        return Ok("unknown_price".into());
    };
    let written = snapshot::apply(conn, &user_id, &plan, &snapshot, created).await?;
    Ok(if written { "applied" } else { "stale" }.into())
}

/// The subscription an invoice is for (older and newer API shapes).
fn invoice_subscription(invoice: &Value) -> Option<&str> {
    invoice["subscription"]
        .as_str()
        .or_else(|| invoice["parent"]["subscription_details"]["subscription"].as_str())
        .or_else(|| invoice["lines"]["data"][0]["subscription"].as_str())
}

async fn invoice_paid(
    conn: &mut AsyncPgConnection,
    invoice: &Value,
    created: DateTime<Utc>,
) -> QueryResult<String> {
    let Some(subscription) = invoice_subscription(invoice) else {
        return Ok("not_a_subscription_invoice".into());
    };
    let period = &invoice["lines"]["data"][0]["period"];
    let (Some(start), Some(end)) = (timestamp(&period["start"]), timestamp(&period["end"])) else {
        return Ok("malformed".into());
    };
    let renewed = diesel::update(
        subscriptions::table
            .filter(subscriptions::stripe_subscription_id.eq(subscription))
            .filter(
                subscriptions::current_period_end
                    .is_null()
                    .or(subscriptions::current_period_end.le(end)),
            ),
    )
    .set((
        subscriptions::current_period_start.eq(Some(start)),
        subscriptions::current_period_end.eq(Some(end)),
        subscriptions::status.eq(diesel::dsl::sql::<diesel::sql_types::Text>(
            "CASE WHEN status IN ('PAST_DUE', 'UNPAID') THEN 'ACTIVE' ELSE status END",
        )),
        subscriptions::stripe_event_created_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("GREATEST(stripe_event_created_at, ")
        .bind::<diesel::sql_types::Timestamptz, _>(created)
        .sql(")")),
        subscriptions::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(if renewed > 0 {
        "applied"
    } else {
        "unknown_or_stale_subscription"
    }
    .into())
}

async fn invoice_failed(
    conn: &mut AsyncPgConnection,
    invoice: &Value,
    created: DateTime<Utc>,
) -> QueryResult<String> {
    let Some(subscription) = invoice_subscription(invoice) else {
        return Ok("not_a_subscription_invoice".into());
    };
    let changed = diesel::update(
        subscriptions::table
            .filter(subscriptions::stripe_subscription_id.eq(subscription))
            .filter(
                subscriptions::status
                    .eq_any([SubscriptionStatus::Active, SubscriptionStatus::Trialing]),
            )
            .filter(
                subscriptions::stripe_event_created_at
                    .is_null()
                    .or(subscriptions::stripe_event_created_at.le(created)),
            ),
    )
    .set((
        subscriptions::status.eq(SubscriptionStatus::PastDue),
        subscriptions::stripe_event_created_at.eq(Some(created)),
        subscriptions::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(if changed > 0 {
        "applied"
    } else {
        "unknown_or_stale_subscription"
    }
    .into())
}
