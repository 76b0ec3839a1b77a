//! Credit packs for sale and the viewer's purchases of them. Every write of `purchases` is
//! here: the purchase recorded when its checkout opens, and what Stripe's events do to it.

use crate::db::states::db_enum;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::pagination::owned_newest_first;
use crate::db::schema::{credit_packs, purchases};

db_enum! {
    /// Where a purchase is.
    PurchaseStatus {
        /// Checkout started; not paid yet.
        Pending => "PENDING",
        /// Paid; the credits were added.
        Completed => "COMPLETED",
        /// The payment failed or the checkout expired.
        Failed => "FAILED",
        /// Refunded in full: its credits were taken back.
        Refunded => "REFUNDED",
        /// Refunded in part: the same share of its credits was taken back.
        PartiallyRefunded => "PARTIALLY_REFUNDED",
        /// Its payment is disputed: the remaining credits are held until the dispute closes.
        Disputed => "DISPUTED",
        /// The dispute was lost: the held credits stay taken.
        DisputeLost => "DISPUTE_LOST",
    }
}

/// A credit pack sold through Stripe Checkout.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = credit_packs, check_for_backend(diesel::pg::Pg))]
pub(crate) struct CreditPack {
    /// e.g. `SMALL`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Credits granted, in cents.
    pub credits_cents: i64,
    /// The Stripe Price that sells it.
    pub stripe_price_id: Option<String>,
}

impl CreditPack {
    /// The packs on sale (active, with a Stripe price), smallest first.
    pub(crate) async fn for_sale(
        conn: &mut impl crate::db::request::Db,
    ) -> QueryResult<Vec<CreditPack>> {
        credit_packs::table
            .filter(credit_packs::active.eq(true))
            .filter(credit_packs::stripe_price_id.is_not_null())
            .order(credit_packs::credits_cents)
            .select(CreditPack::as_select())
            .load(conn)
            .await
    }

    /// The credits pack `code` grants (whether or not it is still on sale).
    pub(crate) async fn credits_of(
        conn: &mut impl crate::db::request::Db,
        code: &str,
    ) -> QueryResult<Option<i64>> {
        credit_packs::table
            .find(code)
            .select(credit_packs::credits_cents)
            .first(conn)
            .await
            .optional()
    }
}

/// A purchase of a credit pack.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = purchases, check_for_backend(diesel::pg::Pg))]
pub(crate) struct Purchase {
    /// Row id.
    pub id: i64,
    /// Buyer.
    pub user_id: String,
    /// Pack code.
    pub pack: String,
    /// Amount charged, in the currency's minor unit.
    pub amount_cents: i64,
    /// ISO currency, lower case.
    pub currency: String,
    /// Credits granted, in cents.
    pub credits_cents: i64,
    /// `PENDING`, `COMPLETED`, `FAILED` or `REFUNDED`.
    pub status: PurchaseStatus,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Paid.
    pub completed_at: Option<DateTime<Utc>>,
    /// What Stripe refunded of the payment, in the currency's minor unit (cumulative).
    pub refunded_amount_cents: i64,
    /// Credits taken back for refunds, in cents.
    pub credits_reversed_cents: i64,
}

/// The writes Stripe's events make to a purchase, and the lock a refund takes of it.
impl Purchase {
    /// Marks a Checkout Session's purchase completed, unless it already is: the update is
    /// conditional, so only one event ever grants its credits (the ledger's unique index on
    /// `purchase_id` backs that up). Returns the purchase id, owner and credits when this call
    /// completed it.
    pub(crate) async fn complete(
        conn: &mut AsyncPgConnection,
        checkout_session_id: &str,
        payment_intent_id: Option<&str>,
    ) -> QueryResult<Option<(i64, String, i64)>> {
        diesel::update(
            purchases::table
                .filter(purchases::stripe_checkout_session_id.eq(checkout_session_id))
                // Once paid (and perhaps refunded since), a purchase never completes again.
                .filter(
                    purchases::status.eq_any([PurchaseStatus::Pending, PurchaseStatus::Failed]),
                ),
        )
        .set((
            purchases::status.eq(PurchaseStatus::Completed),
            purchases::completed_at.eq(Some(Utc::now())),
            purchases::stripe_payment_intent_id.eq(payment_intent_id),
        ))
        .returning((purchases::id, purchases::user_id, purchases::credits_cents))
        .get_result(conn)
        .await
        .optional()
    }

    /// Marks a Checkout Session's pending purchase failed; whether there was one.
    pub(crate) async fn fail_pending(
        conn: &mut AsyncPgConnection,
        checkout_session_id: &str,
    ) -> QueryResult<bool> {
        let changed = diesel::update(
            purchases::table
                .filter(purchases::stripe_checkout_session_id.eq(checkout_session_id))
                .filter(purchases::status.eq(PurchaseStatus::Pending)),
        )
        .set(purchases::status.eq(PurchaseStatus::Failed))
        .execute(conn)
        .await?;
        Ok(changed > 0)
    }

    /// The paid purchase (completed, or refunded in part or in full) of payment
    /// `payment_intent`, locked until the transaction ends.
    pub(crate) async fn paid_by(
        conn: &mut AsyncPgConnection,
        payment_intent: &str,
    ) -> QueryResult<Option<Purchase>> {
        purchases::table
            .filter(purchases::stripe_payment_intent_id.eq(payment_intent))
            .filter(purchases::status.eq_any([
                PurchaseStatus::Completed,
                PurchaseStatus::PartiallyRefunded,
                PurchaseStatus::Refunded,
                PurchaseStatus::Disputed,
                PurchaseStatus::DisputeLost,
            ]))
            .select(Purchase::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()
    }

    /// Records purchase `id`'s refund: the money refunded, the credits taken back, its status.
    pub(crate) async fn set_refund(
        conn: &mut AsyncPgConnection,
        id: i64,
        refunded_amount_cents: i64,
        credits_reversed_cents: i64,
        status: PurchaseStatus,
    ) -> QueryResult<()> {
        diesel::update(purchases::table.find(id))
            .set((
                purchases::refunded_amount_cents.eq(refunded_amount_cents),
                purchases::credits_reversed_cents.eq(credits_reversed_cents),
                purchases::status.eq(status),
            ))
            .execute(conn)
            .await
            .map(drop)
    }
}

/// A purchase to record when its Checkout Session is created.
#[derive(Insertable, Debug)]
#[diesel(table_name = purchases, check_for_backend(diesel::pg::Pg))]
pub struct NewPurchase<'a> {
    /// Buyer.
    pub user_id: &'a str,
    /// The Checkout Session.
    pub stripe_checkout_session_id: &'a str,
    /// Pack code.
    pub pack: &'a str,
    /// Amount Stripe will charge.
    pub amount_cents: i64,
    /// Currency.
    pub currency: &'a str,
    /// Credits to grant.
    pub credits_cents: i64,
    /// `PENDING`.
    pub status: PurchaseStatus,
}

impl NewPurchase<'_> {
    /// Records it unless the session is already recorded.
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(purchases::table)
            .values(self)
            .on_conflict_do_nothing()
            .execute(conn)
            .await
            .map(|_| ())
    }
}

owned_newest_first!(Purchase, purchases, "purchases");
