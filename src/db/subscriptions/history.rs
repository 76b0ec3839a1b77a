//! A subscription's billing history (`subscription_history`): invoices paid and failed and
//! refunds of invoice payments, written by Stripe's events (one row per Stripe object and kind)
//! and read by the viewer, owner-scoped.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::subscription_history;
use crate::db::states::db_enum;

db_enum! {
    /// What happened (`subscription_history.kind`).
    #[graphql(name = "BillingHistoryKind")]
    HistoryKind {
        /// An invoice was paid.
        InvoicePaid => "INVOICE_PAID",
        /// An invoice's payment failed.
        PaymentFailed => "PAYMENT_FAILED",
        /// An invoice's payment was refunded (the amount is cumulative).
        PaymentRefunded => "PAYMENT_REFUNDED",
    }
}

/// One entry of the history.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = subscription_history, check_for_backend(diesel::pg::Pg))]
pub(crate) struct HistoryEntry {
    /// What happened.
    pub kind: HistoryKind,
    /// The amount (for a refund, all of the payment refunded so far).
    pub amount_cents: i64,
    /// ISO currency, lower-case as Stripe writes it.
    pub currency: String,
    /// When Stripe said it happened.
    pub occurred_at: DateTime<Utc>,
}

/// What Stripe reported, for [`record`].
pub(crate) struct Entry<'a> {
    /// What happened.
    pub kind: HistoryKind,
    /// The invoice or the charge.
    pub stripe_object_id: &'a str,
    /// The amount (cumulative for a refund: the largest reported stays).
    pub amount_cents: i64,
    /// Currency.
    pub currency: &'a str,
    /// When.
    pub occurred_at: DateTime<Utc>,
}

/// Records `entry` for the owner of Stripe subscription `subscription` (a no-op when no user
/// has it); whether a user was found.
pub(crate) async fn record_for_subscription(
    conn: &mut AsyncPgConnection,
    subscription: &str,
    entry: &Entry<'_>,
) -> QueryResult<bool> {
    record(
        conn,
        "SELECT user_id, stripe_subscription_id FROM subscriptions WHERE stripe_subscription_id = $6",
        subscription,
        entry,
    )
    .await
}

/// Records `entry` for the user of Stripe customer `customer`, on their current subscription
/// (a no-op when no user has that customer); whether a user was found.
pub(crate) async fn record_for_customer(
    conn: &mut AsyncPgConnection,
    customer: &str,
    entry: &Entry<'_>,
) -> QueryResult<bool> {
    record(
        conn,
        "SELECT c.user_id, s.stripe_subscription_id FROM stripe_customers c \
         LEFT JOIN subscriptions s ON s.user_id = c.user_id WHERE c.customer_id = $6",
        customer,
        entry,
    )
    .await
}

async fn record(
    conn: &mut AsyncPgConnection,
    owner: &str,
    key: &str,
    entry: &Entry<'_>,
) -> QueryResult<bool> {
    let written = diesel::sql_query(format!(
        "INSERT INTO subscription_history AS h \
             (user_id, stripe_subscription_id, kind, stripe_object_id, amount_cents, currency, occurred_at) \
         SELECT o.user_id, o.stripe_subscription_id, $1, $2, $3, $4, $5 FROM ({owner}) o \
         ON CONFLICT (kind, stripe_object_id) DO UPDATE SET \
             amount_cents = GREATEST(h.amount_cents, EXCLUDED.amount_cents), \
             occurred_at = GREATEST(h.occurred_at, EXCLUDED.occurred_at)"
    ))
    .bind::<Text, _>(entry.kind)
    .bind::<Text, _>(entry.stripe_object_id)
    .bind::<BigInt, _>(entry.amount_cents.max(0))
    .bind::<Text, _>(entry.currency)
    .bind::<Timestamptz, _>(entry.occurred_at)
    .bind::<Nullable<Text>, _>(Some(key))
    .execute(conn)
    .await?;
    Ok(written > 0)
}

/// The newest `limit` entries of `user_id`'s history.
pub(crate) async fn of_user(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    limit: i64,
) -> QueryResult<Vec<HistoryEntry>> {
    subscription_history::table
        .filter(subscription_history::user_id.eq(user_id))
        .order((
            subscription_history::occurred_at.desc(),
            subscription_history::id.desc(),
        ))
        .limit(limit)
        .select(HistoryEntry::as_select())
        .load(conn)
        .await
}
