//! The disputes of payments (`stripe_disputes`) and the credits each holds.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::stripe_disputes;
use crate::db::states::db_enum;

db_enum! {
    /// Where a dispute is (`stripe_disputes.status`).
    DisputeStatus {
        /// Open: the purchase's remaining credits are held.
        Open => "OPEN",
        /// Closed in the merchant's favour (or an inquiry closed): the hold is released.
        Won => "WON",
        /// Closed in the customer's favour: the held credits stay taken.
        Lost => "LOST",
    }
}

/// A dispute of a payment, as bff keeps it.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = stripe_disputes, check_for_backend(diesel::pg::Pg))]
pub(crate) struct Dispute {
    /// `dp_…`.
    pub id: String,
    /// Where it is.
    pub status: DisputeStatus,
    /// Credits the hold took.
    pub held_cents: i64,
    /// Whether the hold was taken.
    pub hold_applied: bool,
    /// Whether the hold was given back.
    pub released: bool,
}

/// Records dispute `id` of payment `payment_intent` as `status`: a closed dispute stays closed
/// (a late `created` event does not reopen it).
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    id: &str,
    payment_intent: &str,
    status: DisputeStatus,
    amount: i64,
) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Text};
    diesel::sql_query(
        "INSERT INTO stripe_disputes AS d (id, payment_intent_id, status, amount_cents) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET \
             status = CASE WHEN d.status = 'OPEN' THEN EXCLUDED.status ELSE d.status END, \
             updated_at = now()",
    )
    .bind::<Text, _>(id)
    .bind::<Text, _>(payment_intent)
    .bind::<Text, _>(status)
    .bind::<BigInt, _>(amount.max(0))
    .execute(conn)
    .await
    .map(drop)
}

/// The disputes of payment `payment_intent`, oldest first, locked until the transaction ends.
pub(crate) async fn of_payment(
    conn: &mut AsyncPgConnection,
    payment_intent: &str,
) -> QueryResult<Vec<Dispute>> {
    stripe_disputes::table
        .filter(stripe_disputes::payment_intent_id.eq(payment_intent))
        .order((stripe_disputes::created_at, stripe_disputes::id))
        .select(Dispute::as_select())
        .for_update()
        .load(conn)
        .await
}

/// Records what settling did to dispute `id`: its hold, and whether it was given back.
pub(crate) async fn set_hold(
    conn: &mut AsyncPgConnection,
    id: &str,
    held_cents: i64,
    released: bool,
) -> QueryResult<()> {
    diesel::update(stripe_disputes::table.find(id))
        .set((
            stripe_disputes::held_cents.eq(held_cents),
            stripe_disputes::hold_applied.eq(true),
            stripe_disputes::released.eq(released),
            stripe_disputes::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(drop)
}
