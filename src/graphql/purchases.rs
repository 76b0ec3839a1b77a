//! The viewer's credit purchases.

pub(crate) use crate::db::purchases::PurchaseStatus;
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::connection::{Totals, arguments, connection, page};
use super::context::read;
use super::ids::{Kind, global_id};
use super::scalars::Decimal;
use crate::db::purchases::{CreditPack as PackRow, Purchase as Row};
use crate::error::{AppError, AppResult};

/// A credit pack bought through Stripe Checkout.
pub(crate) struct Purchase(pub Row);

/// A credit pack bought through Stripe Checkout.
#[Object]
impl Purchase {
    /// The purchase's opaque global id.
    pub async fn id(&self) -> ID {
        global_id(Kind::Purchase, self.0.id)
    }
    /// The pack bought (e.g. `SMALL`).
    async fn pack(&self) -> &str {
        &self.0.pack
    }
    /// The amount charged, in `currency`.
    async fn amount(&self) -> Decimal {
        Decimal(self.0.amount_cents)
    }
    /// ISO currency code, lower case (e.g. `usd`).
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// The credits the pack grants.
    async fn credits(&self) -> Decimal {
        Decimal(self.0.credits_cents)
    }
    /// Where the purchase is.
    async fn status(&self) -> async_graphql::Result<PurchaseStatus> {
        Ok(self.0.status)
    }
    /// What Stripe refunded of the payment, in `currency` (0 when nothing).
    async fn refunded_amount(&self) -> Decimal {
        Decimal(self.0.refunded_amount_cents)
    }
    /// The credits taken back because of refunds: all of them for a full refund, the refunded
    /// share (rounded down) for a partial one.
    async fn credits_reversed(&self) -> Decimal {
        Decimal(self.0.credits_reversed_cents)
    }
    /// When checkout started.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it was paid and the credits added.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
}

/// Counts the viewer's purchases, only when `totalCount` is selected.
pub(crate) struct PurchaseTotals {
    user_id: String,
}

impl Totals for PurchaseTotals {
    async fn total_count(&self, ctx: &Context<'_>) -> AppResult<i64> {
        let conn = read(ctx).await?;
        Ok(Row::count(&mut &**conn, &self.user_id).await?)
    }
}

connection!(
    PurchaseConnection,
    PurchaseEdge,
    Purchase,
    PurchaseTotals,
    "the viewer's purchases, newest first"
);

/// The viewer's purchases, newest first.
pub(crate) async fn list(
    ctx: &Context<'_>,
    user_id: &str,
    first: Option<i32>,
    after: Option<String>,
) -> AppResult<PurchaseConnection> {
    let (first, after) = arguments(first, after.as_deref())?;
    let conn = read(ctx).await?;
    let rows = Row::page(&mut &**conn, user_id, after, first + 1)
        .await
        .map_err(AppError::from)?;
    let (edges, info) = page(rows, first, after, Row::cursor, Purchase);
    let totals = PurchaseTotals {
        user_id: user_id.to_owned(),
    };
    Ok(PurchaseConnection::new(edges, info, totals))
}

/// A pack of credits for sale.
pub(crate) struct CreditPack(pub PackRow);

/// A pack of credits for sale.
#[Object]
impl CreditPack {
    /// Its code, for `purchaseCredits(pack:)`.
    async fn code(&self) -> &str {
        &self.0.code
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The credits it adds.
    async fn credits(&self) -> Decimal {
        Decimal(self.0.credits_cents)
    }
}
