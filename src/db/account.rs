//! Leaving: deleting the viewer's account, and the queue of clean-up outside PostgreSQL that a
//! deletion leaves (`account_cleanups`), and that a payment arriving after it adds. The database does the rest when the user row goes,
//! whoever deletes it (bff, Better Auth's `deleteUser`, an operator): bff's rows cascade away,
//! the money trail is moved to a random tombstone id, and the Stripe subscription, the Stripe
//! customer and the stored objects are queued (migration `…_account_deletion`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::states::db_enum;

/// Why the account was not deleted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeleteError {
    /// The session was created longer ago than the freshness window (or is a JWT, which names
    /// no session).
    #[error("the session is not fresh")]
    NotFresh,
    /// `confirmEmail` is not the account's email.
    #[error("the email does not match")]
    WrongEmail,
    /// The user is gone already.
    #[error("no such user")]
    Gone,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    session_created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

/// Deletes user `user_id` as Better Auth's `deleteUser` does (their verification values, sessions,
/// accounts, then the user), in the caller's transaction, when session `session_id` of theirs
/// was created within `fresh` and `confirm_email` is their email (ignoring case and spaces
/// around it). The database's triggers remove, anonymise and queue the rest.
pub(crate) async fn delete(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    session_id: &str,
    confirm_email: &str,
    fresh: Duration,
) -> Result<DateTime<Utc>, DeleteError> {
    let owner: Option<Owner> = diesel::sql_query(
        "SELECT u.email, s.\"createdAt\" AS session_created_at, now() AS now FROM \"user\" u \
         LEFT JOIN session s ON s.id = $2 AND s.\"userId\" = u.id \
         WHERE u.id = $1 FOR UPDATE OF u",
    )
    .bind::<Text, _>(user_id)
    .bind::<Text, _>(session_id)
    .get_result(conn)
    .await
    .optional()?;
    let owner = owner.ok_or(DeleteError::Gone)?;
    let fresh = chrono::Duration::from_std(fresh).unwrap_or(chrono::Duration::MAX);
    if owner
        .session_created_at
        .is_none_or(|created| created <= owner.now - fresh)
    {
        return Err(DeleteError::NotFresh);
    }
    if !owner
        .email
        .trim()
        .eq_ignore_ascii_case(confirm_email.trim())
    {
        return Err(DeleteError::WrongEmail);
    }
    diesel::sql_query("DELETE FROM verification WHERE identifier = $1 OR value = $2")
        .bind::<Text, _>(&owner.email)
        .bind::<Text, _>(user_id)
        .execute(conn)
        .await?;
    for statement in [
        // Delivered at commit: every process closes the person's live connections.
        "SELECT pg_notify('bff_live', json_build_object('t', 'gone', 'u', $1::text)::text)",
        "DELETE FROM session WHERE \"userId\" = $1",
        "DELETE FROM account WHERE \"userId\" = $1",
        "DELETE FROM \"user\" WHERE id = $1",
    ] {
        diesel::sql_query(statement)
            .bind::<Text, _>(user_id)
            .execute(conn)
            .await?;
    }
    Ok(owner.now)
}

db_enum! {
    /// What a clean-up does (`account_cleanups.action`, `checkout_cleanups.action`).
    CleanupAction {
        /// Cancel the Stripe subscription now.
        CancelSubscription => "CANCEL_SUBSCRIPTION",
        /// Delete the Stripe customer (Stripe keeps the payments for accounting).
        DeleteCustomer => "DELETE_CUSTOMER",
        /// Expire a Checkout Session still open, so nobody can pay it.
        ExpireCheckout => "EXPIRE_CHECKOUT",
        /// Refund a payment (a payment intent) in full.
        RefundPayment => "REFUND_PAYMENT",
        /// Refund what an invoice was paid with, in full.
        RefundInvoice => "REFUND_INVOICE",
    }
}

impl CleanupAction {
    /// The queue it waits in: a deleted account's Stripe objects in `account_cleanups`, a
    /// checkout's expiry and refunds in `checkout_cleanups` (which a bff older than them never
    /// reads, so one still serving during a rolling deploy never claims what it cannot do).
    pub fn queue(self) -> &'static str {
        match self {
            CleanupAction::CancelSubscription | CleanupAction::DeleteCustomer => "account_cleanups",
            CleanupAction::ExpireCheckout
            | CleanupAction::RefundPayment
            | CleanupAction::RefundInvoice => "checkout_cleanups",
        }
    }
}

/// The clean-up queues, in the order they are drained.
const QUEUES: [&str; 2] = ["account_cleanups", "checkout_cleanups"];

/// Queues `action` on Stripe object `stripe_id` (once: queued again, it is the same clean-up).
pub(crate) async fn queue(
    conn: &mut AsyncPgConnection,
    action: CleanupAction,
    stripe_id: &str,
) -> QueryResult<()> {
    diesel::sql_query(format!(
        "INSERT INTO {} (action, stripe_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        action.queue()
    ))
    .bind::<Text, _>(action)
    .bind::<Text, _>(stripe_id)
    .execute(conn)
    .await
    .map(drop)
}

/// A clean-up due.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct Cleanup {
    /// Row id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// What to do.
    #[diesel(sql_type = Text)]
    pub action: CleanupAction,
    /// The Stripe object.
    #[diesel(sql_type = Text)]
    pub stripe_id: String,
    /// Attempts so far, this one included.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// Takes up to `limit` clean-ups of each queue that are due, for `lease` (a process that dies
/// leaves them to be retried when the lease ends).
pub(crate) async fn claim_cleanups(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: Duration,
) -> QueryResult<Vec<Cleanup>> {
    let mut due = Vec::new();
    for queue in QUEUES {
        let claimed: Vec<Cleanup> = diesel::sql_query(format!(
            "UPDATE {queue} SET attempts = attempts + 1, \
                 not_before = now() + make_interval(secs => $2) \
             WHERE id IN (SELECT id FROM {queue} WHERE not_before <= now() \
                          ORDER BY not_before, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, action, stripe_id, attempts"
        ))
        .bind::<BigInt, _>(limit)
        .bind::<Double, _>(lease.as_secs_f64())
        .load(conn)
        .await?;
        due.extend(claimed);
    }
    Ok(due)
}

/// A clean-up succeeded: it is forgotten.
pub(crate) async fn cleanup_done(
    conn: &mut AsyncPgConnection,
    cleanup: &Cleanup,
) -> QueryResult<()> {
    diesel::sql_query(format!(
        "DELETE FROM {} WHERE id = $1",
        cleanup.action.queue()
    ))
    .bind::<BigInt, _>(cleanup.id)
    .execute(conn)
    .await
    .map(drop)
}

/// A clean-up failed: retried after `backoff`.
pub(crate) async fn cleanup_failed(
    conn: &mut AsyncPgConnection,
    cleanup: &Cleanup,
    error: &str,
    backoff: Duration,
) -> QueryResult<()> {
    diesel::sql_query(format!(
        "UPDATE {} SET last_error = $2, \
             not_before = now() + make_interval(secs => $3) WHERE id = $1",
        cleanup.action.queue()
    ))
    .bind::<BigInt, _>(cleanup.id)
    .bind::<Text, _>(error)
    .bind::<Double, _>(backoff.as_secs_f64())
    .execute(conn)
    .await
    .map(drop)
}
