//! What Stripe refunded of each payment (`stripe_payment_refunds`), whose row is also the
//! payment's lock: refunds, disputes and the completion of the purchase take it first.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::stripe_payment_refunds;

/// Takes the lock of payment `payment_intent` (a row of `stripe_payment_refunds`, created with
/// nothing refunded if missing) until the transaction ends, and records `refunded` of `amount`
/// when given (the largest cumulative amount seen stays). A refund and the completion of the
/// purchase it refunds take this lock first, so whichever comes second sees the other.
pub(crate) async fn lock(
    conn: &mut AsyncPgConnection,
    payment_intent: &str,
    amount: i64,
    refunded: i64,
) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Text};
    diesel::sql_query(
        "INSERT INTO stripe_payment_refunds AS r (payment_intent_id, amount_cents, refunded_cents) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (payment_intent_id) DO UPDATE SET \
             refunded_cents = GREATEST(r.refunded_cents, EXCLUDED.refunded_cents), \
             amount_cents = GREATEST(r.amount_cents, EXCLUDED.amount_cents), updated_at = now()",
    )
    .bind::<Text, _>(payment_intent)
    .bind::<BigInt, _>(amount.max(0))
    .bind::<BigInt, _>(refunded.max(0))
    .execute(conn)
    .await
    .map(drop)
}

/// What Stripe refunded of payment `payment_intent`: (amount, refunded), if anything was said.
pub(crate) async fn refunded_of(
    conn: &mut AsyncPgConnection,
    payment_intent: &str,
) -> QueryResult<Option<(i64, i64)>> {
    stripe_payment_refunds::table
        .find(payment_intent)
        .select((
            stripe_payment_refunds::amount_cents,
            stripe_payment_refunds::refunded_cents,
        ))
        .first(conn)
        .await
        .optional()
}
