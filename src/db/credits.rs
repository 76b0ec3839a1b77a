//! Credit accounts and their append-only ledger. Amounts are integer cents.

use crate::db::states::db_enum;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::pagination::owned_newest_first;
use crate::db::schema::{credit_accounts, credit_ledger};

db_enum! {
    /// Why the balance changed.
    CreditTransactionKind {
        /// Credits bought through Stripe.
        Purchase => "PURCHASE",
        /// Credits given (promotion, support).
        Grant => "GRANT",
        /// A photo job was paid for.
        JobCharge => "JOB_CHARGE",
        /// A failed or canceled photo job was refunded.
        JobRefund => "JOB_REFUND",
        /// A manual correction.
        Adjustment => "ADJUSTMENT",
        /// Credits of a purchase taken back because its payment was refunded (in full or in
        /// part); may take the balance below zero when the credits were already spent.
        PurchaseRefund => "PURCHASE_REFUND",
        /// A purchase's remaining credits taken out of use while its payment is disputed.
        DisputeHold => "DISPUTE_HOLD",
        /// A won dispute's held credits given back.
        DisputeRelease => "DISPUTE_RELEASE",
    }
}

/// A user's credit account.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = credit_accounts, check_for_backend(diesel::pg::Pg))]
pub struct CreditAccount {
    /// Owner.
    pub user_id: String,
    /// Balance in cents, never negative.
    pub balance_cents: i64,
    /// Free photos already spent.
    pub free_photos_used: i32,
}

impl CreditAccount {
    /// The user's account, or an empty one when they have none yet.
    pub async fn find_or_empty(
        conn: &mut impl crate::db::request::Db,
        user_id: &str,
    ) -> QueryResult<CreditAccount> {
        let account = credit_accounts::table
            .find(user_id)
            .select(CreditAccount::as_select())
            .first(conn)
            .await
            .optional()?;
        Ok(account.unwrap_or_else(|| CreditAccount {
            user_id: user_id.to_owned(),
            balance_cents: 0,
            free_photos_used: 0,
        }))
    }
}

/// One balance change.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = credit_ledger, check_for_backend(diesel::pg::Pg))]
pub struct LedgerEntry {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub user_id: String,
    /// `PURCHASE`, `GRANT`, `JOB_CHARGE`, `JOB_REFUND` or `ADJUSTMENT`.
    pub kind: CreditTransactionKind,
    /// Signed change in cents.
    pub amount_cents: i64,
    /// Balance after the change, in cents.
    pub balance_after_cents: i64,
    /// What the change was for.
    pub description: String,
    /// The job charged or refunded.
    pub photo_job_id: Option<i64>,
    /// The purchase that granted the credits.
    pub purchase_id: Option<i64>,
    /// When.
    pub created_at: DateTime<Utc>,
}

owned_newest_first!(LedgerEntry, credit_ledger, "ledger entries");

/// A balance change to record.
#[derive(Clone, Debug)]
pub struct Change<'a> {
    /// Owner.
    pub user_id: &'a str,
    /// Ledger kind.
    pub kind: CreditTransactionKind,
    /// Signed amount in cents (never 0).
    pub amount_cents: i64,
    /// What it is for.
    pub description: &'a str,
    /// The job charged or refunded.
    pub photo_job_id: Option<i64>,
    /// The purchase that granted credits.
    pub purchase_id: Option<i64>,
}

impl CreditAccount {
    /// Applies `change` to the balance and appends its ledger row, in the caller's
    /// transaction. The conditional update is atomic, so concurrent spends can never take the
    /// balance below zero; `None` means the balance does not cover a spend (nothing written).
    /// Credits coming in (`amount_cents` > 0) always apply, also to a negative balance.
    pub async fn apply(
        conn: &mut AsyncPgConnection,
        change: &Change<'_>,
    ) -> QueryResult<Option<i64>> {
        Ok(Self::apply_entry(conn, change)
            .await?
            .map(|entry| entry.balance_after_cents))
    }

    /// [`CreditAccount::apply`], answering the ledger row it appended.
    pub async fn apply_entry(
        conn: &mut AsyncPgConnection,
        change: &Change<'_>,
    ) -> QueryResult<Option<LedgerEntry>> {
        let floor = if change.amount_cents < 0 { 0 } else { i64::MIN };
        Self::write(conn, change, floor).await
    }

    /// Takes credits back (`change.amount_cents` < 0) whatever the balance, in the caller's
    /// transaction: a refunded purchase's credits that were already spent leave the balance
    /// below zero rather than vanishing. Returns the new balance.
    pub async fn take_back(conn: &mut AsyncPgConnection, change: &Change<'_>) -> QueryResult<i64> {
        Self::write(conn, change, i64::MIN)
            .await?
            .map(|entry| entry.balance_after_cents)
            .ok_or(diesel::result::Error::NotFound)
    }

    /// Applies `change` unless the balance would end below `floor`; the ledger row appended.
    async fn write(
        conn: &mut AsyncPgConnection,
        change: &Change<'_>,
        floor: i64,
    ) -> QueryResult<Option<LedgerEntry>> {
        diesel::insert_into(credit_accounts::table)
            .values(credit_accounts::user_id.eq(change.user_id))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        let balance: Option<i64> = diesel::update(credit_accounts::table.find(change.user_id))
            .filter((credit_accounts::balance_cents + change.amount_cents).ge(floor))
            .set((
                credit_accounts::balance_cents
                    .eq(credit_accounts::balance_cents + change.amount_cents),
                credit_accounts::updated_at.eq(diesel::dsl::now),
            ))
            .returning(credit_accounts::balance_cents)
            .get_result(conn)
            .await
            .optional()?;
        let Some(balance) = balance else {
            return Ok(None);
        };
        diesel::insert_into(credit_ledger::table)
            .values((
                credit_ledger::user_id.eq(change.user_id),
                credit_ledger::kind.eq(change.kind),
                credit_ledger::amount_cents.eq(change.amount_cents),
                credit_ledger::balance_after_cents.eq(balance),
                credit_ledger::description.eq(change.description),
                credit_ledger::photo_job_id.eq(change.photo_job_id),
                credit_ledger::purchase_id.eq(change.purchase_id),
            ))
            .returning(LedgerEntry::as_returning())
            .get_result(conn)
            .await
            .map(Some)
    }
}

impl CreditAccount {
    /// The user's account, created empty if missing, locked (`FOR UPDATE`) until the caller's
    /// transaction ends: everything that spends a user's credits or quota goes through this
    /// lock, so concurrent requests of one user take turns and cannot spend the same credits.
    pub async fn lock(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<CreditAccount> {
        diesel::insert_into(credit_accounts::table)
            .values(credit_accounts::user_id.eq(user_id))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        credit_accounts::table
            .find(user_id)
            .select(CreditAccount::as_select())
            .for_update()
            .get_result(conn)
            .await
    }

    /// Adds `photos` to the free photos used (negative gives them back, never below zero).
    pub async fn add_free_photos_used(
        conn: &mut AsyncPgConnection,
        user_id: &str,
        photos: i32,
    ) -> QueryResult<()> {
        diesel::update(credit_accounts::table.find(user_id))
            .set((
                credit_accounts::free_photos_used.eq(
                    diesel::dsl::sql::<diesel::sql_types::Integer>("GREATEST(free_photos_used + ")
                        .bind::<diesel::sql_types::Integer, _>(photos)
                        .sql(", 0)"),
                ),
                credit_accounts::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(|_| ())
    }
}
