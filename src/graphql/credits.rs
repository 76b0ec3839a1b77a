//! The viewer's credit account and its ledger.

pub(crate) use crate::db::credits::CreditTransactionKind;
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::connection::{Totals, arguments, connection, page};
use super::context::{jobs, read};
use super::ids::{Kind, global_id};
use super::scalars::Decimal;
use crate::db::credits::{CreditAccount as AccountRow, LedgerEntry};
use crate::error::AppError;
use crate::error::AppResult;

/// The viewer's credits: a balance spent on photo jobs, after a free allowance of photos.
#[derive(Clone)]
pub(crate) struct CreditAccount {
    pub(crate) row: AccountRow,
    pub(crate) free_photo_allowance: i32,
}

impl CreditAccount {
    /// The account `row` (an empty one before the first credit), with the allowance in force.
    pub(crate) fn new(ctx: &Context<'_>, row: AccountRow) -> AppResult<Self> {
        Ok(CreditAccount {
            row,
            free_photo_allowance: jobs(ctx)?.free_photo_allowance,
        })
    }
}

/// The viewer's credits: a balance spent on photo jobs, after a free allowance of photos.
#[Object]
impl CreditAccount {
    /// Credits available, exact ("12.50"); never negative.
    async fn balance(&self) -> Decimal {
        Decimal(self.row.balance_cents)
    }
    /// Free photos already used.
    async fn free_photos_used(&self) -> i32 {
        self.row.free_photos_used
    }
    /// Free photos left before jobs cost credits.
    async fn free_photos_remaining(&self) -> i32 {
        (self.free_photo_allowance - self.row.free_photos_used).max(0)
    }
    /// The ledger: every change to the balance, newest first.
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many entries, 0 to 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<CreditTransactionConnection> {
        let (first, after) = arguments(first, after.as_deref())?;
        let user_id = &self.row.user_id;
        let conn = read(ctx).await?;
        let rows = LedgerEntry::page(&mut &**conn, user_id, after, first + 1)
            .await
            .map_err(AppError::from)?;
        let (edges, info) = page(rows, first, after, LedgerEntry::cursor, CreditTransaction);
        let totals = LedgerTotals {
            user_id: user_id.clone(),
        };
        Ok(CreditTransactionConnection::new(edges, info, totals))
    }
}

/// Counts the viewer's ledger entries, only when `totalCount` is selected.
pub(crate) struct LedgerTotals {
    user_id: String,
}

impl Totals for LedgerTotals {
    async fn total_count(&self, ctx: &Context<'_>) -> AppResult<i64> {
        let conn = read(ctx).await?;
        Ok(LedgerEntry::count(&mut &**conn, &self.user_id).await?)
    }
}

connection!(
    CreditTransactionConnection,
    CreditTransactionEdge,
    CreditTransaction,
    LedgerTotals,
    "the viewer's credit ledger, newest first"
);

/// One change to the credit balance.
pub(crate) struct CreditTransaction(pub LedgerEntry);

/// One change to the credit balance.
#[Object]
impl CreditTransaction {
    /// The entry's opaque global id.
    pub async fn id(&self) -> ID {
        global_id(Kind::CreditTransaction, self.0.id)
    }
    /// Why the balance changed.
    async fn kind(&self) -> async_graphql::Result<CreditTransactionKind> {
        Ok(self.0.kind)
    }
    /// The change: positive adds credits, negative spends them.
    async fn amount(&self) -> Decimal {
        Decimal(self.0.amount_cents)
    }
    /// The balance right after this change.
    async fn balance_after(&self) -> Decimal {
        Decimal(self.0.balance_after_cents)
    }
    /// A human-readable description.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The global id of the photo job charged or refunded, if any.
    async fn photo_job_id(&self) -> Option<ID> {
        self.0.photo_job_id.map(|id| global_id(Kind::PhotoJob, id))
    }
    /// When the change happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
