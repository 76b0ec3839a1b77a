//! One person's whole account, as support reads it (`user(id)`).

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::jobs::Job;
use super::types::{LedgerRow, Person};
use crate::db::admin::{self, Person as PersonRow, account};
use crate::db::credits::{CreditAccount, LedgerEntry};
use crate::error::AppError;
use crate::graphql::context::read;
use crate::graphql::scalars::Decimal;

/// A person's sessions.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct Sessions {
    /// Live (unexpired) sessions.
    count: i64,
    /// When any of them was last active.
    last_active_at: Option<DateTime<Utc>>,
    /// Of them, opened by an admin's impersonation.
    impersonated: i64,
}

/// One person's whole account.
pub(crate) struct Account {
    pub(crate) person: PersonRow,
    pub(crate) credits: CreditAccount,
}

/// One person's whole account.
#[Object]
impl Account {
    /// Who they are.
    async fn person(&self) -> Person {
        Person(self.person.clone())
    }
    /// Their credit balance (negative after a refunded purchase whose credits were spent).
    async fn balance(&self) -> Decimal {
        Decimal(self.credits.balance_cents)
    }
    /// Free photos used so far.
    async fn free_photos_used(&self) -> i32 {
        self.credits.free_photos_used
    }
    /// Their live sessions.
    async fn sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Sessions> {
        let conn = read(ctx).await?;
        let s = admin::sessions(&mut &**conn, &self.person.id)
            .await
            .map_err(AppError::from)?;
        Ok(Sessions {
            count: s.count,
            last_active_at: s.last_active,
            impersonated: s.impersonated,
        })
    }
    /// Their subscription (null when they never had one: the free plan).
    async fn subscription(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Subscription>> {
        let conn = read(ctx).await?;
        let row = account::subscription(&mut &**conn, &self.person.id)
            .await
            .map_err(AppError::from)?;
        Ok(row.map(Subscription::of))
    }
    /// Their subscription's latest billing events (invoices paid, payments failed or
    /// refunded), newest first (at most 50).
    async fn billing_history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BillingEvent>> {
        let conn = read(ctx).await?;
        let rows = account::history(&mut &**conn, &self.person.id)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|e| BillingEvent {
                kind: e.kind,
                amount: Decimal(e.amount_cents),
                currency: e.currency,
                occurred_at: e.occurred_at,
            })
            .collect())
    }
    /// Their latest credit purchases with refunds and disputes, newest first (at most 50).
    async fn purchases(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Purchase>> {
        let conn = read(ctx).await?;
        let rows = account::purchases(&mut &**conn, &self.person.id)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|p| Purchase {
                id: ID(p.id.to_string()),
                pack: p.pack,
                status: p.status,
                paid: Decimal(p.amount_cents),
                currency: p.currency,
                credits: Decimal(p.credits_cents),
                refunded: Decimal(p.refunded_amount_cents),
                credits_taken_back: Decimal(p.credits_reversed_cents),
                credits_held_in_dispute: Decimal(p.disputed_cents),
                created_at: p.created_at,
            })
            .collect())
    }
    /// Their latest photo jobs, newest first (at most 50).
    async fn photo_jobs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Job>> {
        let conn = read(ctx).await?;
        let rows = admin::jobs::page(
            &mut &**conn,
            Some(&self.person.id),
            None,
            None,
            None,
            account::LATEST,
        )
        .await
        .map_err(AppError::from)?;
        Ok(rows.into_iter().map(Job).collect())
    }
    /// What they keep in photo storage.
    async fn storage(&self, ctx: &Context<'_>) -> async_graphql::Result<Storage> {
        let conn = read(ctx).await?;
        let stored = account::stored(&mut &**conn, &self.person.id)
            .await
            .map_err(AppError::from)?;
        Ok(Storage {
            uploads: stored.uploads,
            bytes: stored.bytes,
        })
    }
    /// Their latest credit ledger entries, newest first (at most 50).
    async fn ledger(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LedgerRow>> {
        let conn = read(ctx).await?;
        let rows = LedgerEntry::page(&mut &**conn, &self.person.id, None, 50)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(LedgerRow).collect())
    }
}

/// A person's subscription.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct Subscription {
    /// The plan (`FREE`, `PRO`, …).
    plan: String,
    /// Stripe's status (`ACTIVE`, `PAST_DUE`, `CANCELED`, …).
    status: String,
    /// Stripe's subscription id.
    stripe_subscription_id: Option<String>,
    /// When the paid period ends.
    current_period_end: Option<DateTime<Utc>>,
    /// Whether it ends then.
    cancel_at_period_end: bool,
}

impl Subscription {
    /// The row as support reads it.
    pub(crate) fn of(s: account::Subscription) -> Self {
        Subscription {
            plan: s.plan,
            status: s.status,
            stripe_subscription_id: s.stripe_subscription_id,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
        }
    }
}

/// An invoice paid, a payment failed or refunded.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct BillingEvent {
    /// `INVOICE_PAID`, `PAYMENT_FAILED` or `PAYMENT_REFUNDED`.
    kind: String,
    /// How much money.
    amount: Decimal,
    /// In which currency (ISO code, lower case).
    currency: String,
    /// When.
    occurred_at: DateTime<Utc>,
}

/// A credit pack bought.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct Purchase {
    /// The purchase's row id.
    id: ID,
    /// The pack's code.
    pack: String,
    /// Its state, as the person's app shows it.
    status: String,
    /// Money paid.
    paid: Decimal,
    /// In which currency.
    currency: String,
    /// Credits it gave.
    credits: Decimal,
    /// Money refunded.
    refunded: Decimal,
    /// Credits taken back for the refund.
    credits_taken_back: Decimal,
    /// Credits held while a dispute is open.
    credits_held_in_dispute: Decimal,
    /// When.
    created_at: DateTime<Utc>,
}

/// What a person keeps in photo storage.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub(crate) struct Storage {
    /// Uploads and results stored.
    uploads: i64,
    /// Their bytes.
    bytes: i64,
}
