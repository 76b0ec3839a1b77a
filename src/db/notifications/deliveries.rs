//! The deliveries queue: one row per (notification, channel), written beside the notification
//! by its trigger, sent by every `bff serve`. A sender claims a message's rows for a lease (a
//! sender that dies leaves them to be claimed again when it ends), sends, and records the
//! outcome; a failure is retried with backoff until the last attempt, then FAILED. The rows
//! of one message share `message_id`, the id of their first row, set when they are first
//! claimed and kept across retries: it is the message's idempotency key.
//!
//! Only a message's first row (`message_id` unset, or equal to its id) is ever claimed as a
//! lead, so two senders never claim the same message; emails of batched kinds due for one
//! person join the lead's message when it is first claimed.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Jsonb, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::{Channel, NotificationKind};
use crate::db::states::db_enum;

db_enum! {
    /// Where a delivery is.
    DeliveryState {
        /// Waiting to be sent (or being sent, under a lease).
        Pending => "PENDING",
        /// Sent.
        Sent => "SENT",
        /// Nothing to send to (no verified address, no device, the channel not configured).
        Skipped => "SKIPPED",
        /// Gave up after the last attempt.
        Failed => "FAILED",
    }
}

/// One claimed delivery, with what its message needs.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct Claimed {
    /// The message it goes in (its idempotency key).
    #[diesel(sql_type = BigInt)]
    pub message_id: i64,
    /// Email or push.
    #[diesel(sql_type = Text)]
    pub channel: Channel,
    /// Attempts, this one included.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// The recipient.
    #[diesel(sql_type = Text)]
    pub user_id: String,
    /// Their name.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Their address.
    #[diesel(sql_type = Text)]
    pub email: String,
    /// Whether they verified it.
    #[diesel(sql_type = Bool)]
    pub email_verified: bool,
    /// The notification.
    #[diesel(sql_type = BigInt)]
    pub notification_id: i64,
    /// What it tells.
    #[diesel(sql_type = Text)]
    pub kind: NotificationKind,
    /// Whether it is billing a person must see (emailed even to an unverified address).
    #[diesel(sql_type = Bool)]
    pub billing: bool,
    /// Its facts.
    #[diesel(sql_type = Jsonb)]
    pub facts: Value,
}

#[derive(QueryableByName)]
struct Lead {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    message_id: Option<i64>,
    #[diesel(sql_type = Bool)]
    batched: bool,
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = Text)]
    channel: String,
}

/// Claims up to `limit` messages that are due, for `lease`: each message's deliveries, oldest
/// notification first. Emails of batched kinds are due once the oldest has waited `window`,
/// and then every pending one of that person goes in the same message.
pub(crate) async fn claim(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: Duration,
    window: Duration,
) -> QueryResult<Vec<Claimed>> {
    conn.transaction(async |conn| {
        let leads: Vec<Lead> = diesel::sql_query(
            "SELECT id, message_id, batched, user_id, channel FROM notification_deliveries \
             WHERE state = 'PENDING' AND not_before <= now() \
               AND (message_id IS NULL OR message_id = id) \
               AND (NOT batched OR message_id IS NOT NULL \
                    OR created_at <= now() - make_interval(secs => $2)) \
             ORDER BY not_before, id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind::<BigInt, _>(limit)
        .bind::<Double, _>(window.as_secs_f64())
        .load(conn)
        .await?;
        let mut heads = Vec::with_capacity(leads.len());
        let mut joined: Vec<i64> = Vec::new();
        for lead in leads {
            if joined.contains(&lead.id) {
                continue;
            }
            heads.push(lead.id);
            if lead.message_id.is_some() {
                continue;
            }
            let members: Vec<i64> = if lead.batched {
                // The lead's own row is locked by this transaction, which SKIP LOCKED does not
                // skip; rows another sender leads are its own.
                diesel::sql_query(
                    "UPDATE notification_deliveries SET message_id = $1 WHERE id IN ( \
                       SELECT id FROM notification_deliveries \
                       WHERE user_id = $2 AND channel = $3 AND batched AND state = 'PENDING' \
                         AND message_id IS NULL FOR UPDATE SKIP LOCKED) \
                     RETURNING id",
                )
                .bind::<BigInt, _>(lead.id)
                .bind::<Text, _>(&lead.user_id)
                .bind::<Text, _>(&lead.channel)
                .load::<Id>(conn)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect()
            } else {
                diesel::sql_query(
                    "UPDATE notification_deliveries SET message_id = id WHERE id = $1 RETURNING id",
                )
                .bind::<BigInt, _>(lead.id)
                .load::<Id>(conn)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect()
            };
            joined.extend(members);
        }
        diesel::sql_query(
            "UPDATE notification_deliveries d \
                SET attempts = d.attempts + 1, not_before = now() + make_interval(secs => $2) \
               FROM notifications n, notification_kinds k, \"user\" u \
              WHERE d.message_id = ANY($1) AND d.state = 'PENDING' \
                AND n.id = d.notification_id AND k.kind = n.kind AND u.id = d.user_id \
             RETURNING d.message_id, d.channel, d.attempts, d.user_id, u.name, u.email, \
                       u.\"emailVerified\" AS email_verified, n.id AS notification_id, n.kind, \
                       k.billing, n.facts",
        )
        .bind::<Array<BigInt>, _>(&heads)
        .bind::<Double, _>(lease.as_secs_f64())
        .load(conn)
        .await
        .map(|mut rows: Vec<Claimed>| {
            rows.sort_by_key(|r| (r.message_id, r.notification_id));
            rows
        })
    })
    .await
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Message `message_id` was sent (or is not to be: `state` SKIPPED, with why).
pub(crate) async fn finish(
    conn: &mut AsyncPgConnection,
    message_id: i64,
    state: DeliveryState,
    note: Option<&str>,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE notification_deliveries SET state = $2, last_error = $3, finished_at = now() \
         WHERE message_id = $1 AND state = 'PENDING'",
    )
    .bind::<BigInt, _>(message_id)
    .bind::<Text, _>(state)
    .bind::<Nullable<Text>, _>(note)
    .execute(conn)
    .await
    .map(drop)
}

/// Sending message `message_id` failed: it is retried after `backoff`, or FAILED once it has
/// had `max_attempts`. Returns whether it failed for good.
pub(crate) async fn retry(
    conn: &mut AsyncPgConnection,
    message_id: i64,
    error: &str,
    backoff: Duration,
    max_attempts: i32,
) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct After {
        #[diesel(sql_type = Text)]
        state: DeliveryState,
    }
    let rows: Vec<After> = diesel::sql_query(
        "UPDATE notification_deliveries SET last_error = $2, \
             state = CASE WHEN attempts >= $4 THEN 'FAILED' ELSE 'PENDING' END, \
             finished_at = CASE WHEN attempts >= $4 THEN now() END, \
             not_before = now() + make_interval(secs => $3) \
         WHERE message_id = $1 AND state = 'PENDING' RETURNING state",
    )
    .bind::<BigInt, _>(message_id)
    .bind::<Text, _>(error)
    .bind::<Double, _>(backoff.as_secs_f64())
    .bind::<Integer, _>(max_attempts)
    .load(conn)
    .await?;
    Ok(rows.iter().any(|r| r.state == DeliveryState::Failed))
}

/// What `bff check` reports about the queue.
#[derive(QueryableByName, Debug)]
pub(crate) struct Backlog {
    /// Deliveries that gave up in the last day.
    #[diesel(sql_type = BigInt)]
    pub(crate) failed_day: i64,
    /// Deliveries that gave up, ever (they stay until their person's account goes).
    #[diesel(sql_type = BigInt)]
    pub(crate) failed: i64,
    /// Deliveries waiting, due or not.
    #[diesel(sql_type = BigInt)]
    pub(crate) pending: i64,
    /// Deliveries waiting after a failed attempt.
    #[diesel(sql_type = BigInt)]
    pub(crate) retrying: i64,
    /// Deliveries due for more than `overdue` that nobody sent: no sender runs, or every
    /// sender is stuck.
    #[diesel(sql_type = BigInt)]
    pub(crate) overdue: i64,
    /// The last failure's error.
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) last_error: Option<String>,
}

/// The queue's backlog: batched emails are due `window` after they were written, and a
/// delivery due for more than `overdue` counts as overdue.
pub(crate) async fn backlog(
    conn: &mut AsyncPgConnection,
    window: Duration,
    overdue: Duration,
) -> QueryResult<Backlog> {
    diesel::sql_query(
        "SELECT count(*) FILTER (WHERE state = 'FAILED' AND finished_at > now() - interval '1 day') AS failed_day, \
                count(*) FILTER (WHERE state = 'FAILED') AS failed, \
                count(*) FILTER (WHERE state = 'PENDING') AS pending, \
                count(*) FILTER (WHERE state = 'PENDING' AND last_error IS NOT NULL) AS retrying, \
                count(*) FILTER (WHERE state = 'PENDING' AND not_before + CASE WHEN batched AND message_id IS NULL \
                    THEN make_interval(secs => $1) ELSE interval '0' END < now() - make_interval(secs => $2)) AS overdue, \
                (SELECT last_error FROM notification_deliveries WHERE state = 'FAILED' \
                 ORDER BY finished_at DESC NULLS LAST LIMIT 1) AS last_error \
         FROM notification_deliveries WHERE state IN ('PENDING', 'FAILED')",
    )
    .bind::<Double, _>(window.as_secs_f64())
    .bind::<Double, _>(overdue.as_secs_f64())
    .get_result(conn)
    .await
}
