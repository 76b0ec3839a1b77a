//! Each refund of a payment, as Stripe's `refund.*` events (and a charge's `refunds` list)
//! report it. A refund can fail after it was reported — an asynchronous refund the bank sends
//! back — and then the credits it took come back; [`refunded_now`] is what settling a
//! purchase takes back.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::states::db_enum;

db_enum! {
    /// Where a refund is (`stripe_refunds.status`).
    RefundStatus {
        /// Reported, not final (Stripe's `pending` and `requires_action`).
        Pending => "PENDING",
        /// Done.
        Succeeded => "SUCCEEDED",
        /// Failed or canceled: the money stayed with the merchant. Final.
        Failed => "FAILED",
    }
}

impl RefundStatus {
    /// Stripe's `status` of a refund.
    pub fn from_stripe(status: &str) -> Option<RefundStatus> {
        match status {
            "pending" | "requires_action" => Some(RefundStatus::Pending),
            "succeeded" => Some(RefundStatus::Succeeded),
            "failed" | "canceled" => Some(RefundStatus::Failed),
            _ => None,
        }
    }
}

/// Records refund `id` of payment `payment_intent`. A failed refund stays failed, and a
/// succeeded one does not go back to pending (events arrive in any order).
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    id: &str,
    payment_intent: &str,
    amount: i64,
    status: RefundStatus,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO stripe_refunds AS r (id, payment_intent_id, amount_cents, status) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET \
             status = CASE WHEN r.status = 'FAILED' OR EXCLUDED.status = 'PENDING' THEN r.status \
                           ELSE EXCLUDED.status END, \
             amount_cents = GREATEST(r.amount_cents, EXCLUDED.amount_cents), updated_at = now()",
    )
    .bind::<Text, _>(id)
    .bind::<Text, _>(payment_intent)
    .bind::<BigInt, _>(amount.max(0))
    .bind::<Text, _>(status)
    .execute(conn)
    .await
    .map(drop)
}

#[derive(QueryableByName)]
struct Totals {
    #[diesel(sql_type = BigInt)]
    live: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

/// How much of payment `payment_intent` is refunded now, given the largest cumulative
/// `amount_refunded` a `charge.refunded` event reported (`charge_refunded`): that figure less
/// the refunds known to have failed since, or the sum of the refunds not failed, whichever is
/// larger. With only `charge.refunded` enabled it is that figure; with only `refund.*`, the
/// sum; with both, a failure gives back what it took in either order.
pub(crate) async fn refunded_now(
    conn: &mut AsyncPgConnection,
    payment_intent: &str,
    charge_refunded: i64,
) -> QueryResult<i64> {
    let totals: Totals = diesel::sql_query(
        "SELECT COALESCE(SUM(amount_cents) FILTER (WHERE status <> 'FAILED'), 0)::int8 AS live, \
                COALESCE(SUM(amount_cents) FILTER (WHERE status = 'FAILED'), 0)::int8 AS failed \
         FROM stripe_refunds WHERE payment_intent_id = $1",
    )
    .bind::<Text, _>(payment_intent)
    .get_result(conn)
    .await?;
    Ok((charge_refunded - totals.failed).max(totals.live).max(0))
}
