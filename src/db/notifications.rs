//! Notifications: the inbox rows the migrations' triggers write in the same transaction as
//! their cause (and [`trial_ending`], the one cause that is no row of ours), the person's
//! preferences per kind and channel, and their push devices. Every read and write filters by
//! the owner. What the senders do with the deliveries is in [`deliveries`].

pub(crate) mod deliveries;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::db::pagination::{Cursor, owned_newest_first};
use crate::db::request::Db;
use crate::db::schema::{
    notification_kinds, notification_preferences, notifications, push_devices,
};
use crate::db::states::db_enum;

db_enum! {
    /// What a notification tells.
    NotificationKind {
        /// A photo job finished; its results can be downloaded.
        JobCompleted => "JOB_COMPLETED",
        /// A photo job failed; its credits were refunded.
        JobFailed => "JOB_FAILED",
        /// A job's charge took the balance below the low-credits threshold.
        CreditsLow => "CREDITS_LOW",
        /// A subscription payment failed (Stripe's `invoice.payment_failed`).
        PaymentFailed => "PAYMENT_FAILED",
        /// The subscription's trial ends soon (Stripe's `customer.subscription.trial_will_end`).
        TrialEnding => "TRIAL_ENDING",
        /// The subscription ended.
        SubscriptionCanceled => "SUBSCRIPTION_CANCELED",
        /// A credit purchase was refunded (its credits taken back as far as they remained).
        PurchaseRefunded => "PURCHASE_REFUNDED",
        /// A disputed payment put a purchase's remaining credits on hold.
        CreditsHeld => "CREDITS_HELD",
    }
}

impl NotificationKind {
    /// Every kind, in the order the preferences list them.
    pub(crate) const ALL: [NotificationKind; 8] = [
        NotificationKind::JobCompleted,
        NotificationKind::JobFailed,
        NotificationKind::CreditsLow,
        NotificationKind::PaymentFailed,
        NotificationKind::TrialEnding,
        NotificationKind::SubscriptionCanceled,
        NotificationKind::PurchaseRefunded,
        NotificationKind::CreditsHeld,
    ];
}

db_enum! {
    /// A way a notification reaches a person besides the inbox.
    Channel {
        /// An email to their address.
        Email => "EMAIL",
        /// A push notification to their registered devices.
        Push => "PUSH",
    }
}

db_enum! {
    /// The mobile platform a push token belongs to.
    PushPlatform {
        /// Apple's.
        Ios => "IOS",
        /// Google's.
        Android => "ANDROID",
    }
}

/// A notification, as its owner's inbox shows it.
#[derive(Queryable, Selectable, QueryableByName, Clone, Debug)]
#[diesel(table_name = notifications, check_for_backend(diesel::pg::Pg))]
pub struct Notification {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub user_id: String,
    /// What it tells.
    pub kind: NotificationKind,
    /// The job it is about.
    pub photo_job_id: Option<i64>,
    /// The purchase it is about.
    pub purchase_id: Option<i64>,
    /// The subscription it is about.
    pub subscription_id: Option<i64>,
    /// The facts its words are made of, as they were when it was written.
    pub facts: Value,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// Read by its owner; `None` while unread.
    pub read_at: Option<DateTime<Utc>>,
}

owned_newest_first!(Notification, notifications, "notifications");

impl Notification {
    /// Up to `limit` of the user's unread notifications, newest first, after `after`.
    pub(crate) async fn unread_page(
        conn: &mut impl Db,
        user_id: &str,
        after: Option<Cursor>,
        limit: i64,
    ) -> QueryResult<Vec<Notification>> {
        let mut query = notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::read_at.is_null())
            .select(Notification::as_select())
            .order((notifications::created_at.desc(), notifications::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some(c) = after {
            query = query.filter(
                notifications::created_at
                    .lt(c.created_at)
                    .or(notifications::created_at
                        .eq(c.created_at)
                        .and(notifications::id.lt(c.id))),
            );
        }
        query.load(conn).await
    }

    /// How many of the user's notifications are unread.
    pub(crate) async fn unread_count(conn: &mut impl Db, user_id: &str) -> QueryResult<i64> {
        notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::read_at.is_null())
            .count()
            .get_result(conn)
            .await
    }

    /// Marks the user's notifications `ids` (all of their unread ones when `None`) read;
    /// returns those this marked. Ids of other people's notifications mark nothing.
    pub(crate) async fn mark_read(
        conn: &mut AsyncPgConnection,
        user_id: &str,
        ids: Option<&[i64]>,
    ) -> QueryResult<Vec<Notification>> {
        let target = notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::read_at.is_null());
        let set = notifications::read_at.eq(diesel::dsl::now);
        match ids {
            Some(ids) => {
                diesel::update(target.filter(notifications::id.eq_any(ids)))
                    .set(set)
                    .returning(Notification::as_returning())
                    .get_results(conn)
                    .await
            }
            None => {
                diesel::update(target)
                    .set(set)
                    .returning(Notification::as_returning())
                    .get_results(conn)
                    .await
            }
        }
    }

    /// The notifications named by (owner, id) pairs, each only if that owner's: what the live
    /// listener publishes. One statement.
    pub(crate) async fn load(
        conn: &mut impl Db,
        keys: &[(String, i64)],
    ) -> QueryResult<Vec<Notification>> {
        let (users, ids): (Vec<&str>, Vec<i64>) =
            keys.iter().map(|(u, id)| (u.as_str(), *id)).unzip();
        diesel::sql_query(
            "SELECT n.* FROM notifications n \
             JOIN unnest($1::text[], $2::int8[]) AS k (user_id, id) \
               ON n.user_id = k.user_id AND n.id = k.id ORDER BY n.id",
        )
        .bind::<Array<Text>, _>(users)
        .bind::<Array<BigInt>, _>(ids)
        .load(conn)
        .await
    }

    /// These users' notifications written at or after `since`, oldest first: what a process
    /// that lost its listening connection (or a subscriber that fell behind) may have missed.
    pub(crate) async fn added_since(
        conn: &mut impl Db,
        user_ids: &[String],
        since: DateTime<Utc>,
    ) -> QueryResult<Vec<Notification>> {
        notifications::table
            .filter(notifications::user_id.eq_any(user_ids))
            .filter(notifications::created_at.ge(since))
            .order(notifications::id)
            .select(Notification::as_select())
            .load(conn)
            .await
    }
}

/// Notifies TRIAL_ENDING to `user_id` (about their subscription row, if they have one yet), in
/// the caller's transaction (a Stripe event's).
pub(crate) async fn trial_ending(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    trial_end: Option<DateTime<Utc>>,
) -> QueryResult<()> {
    diesel::sql_query(
        "SELECT bff_notify($1, 'TRIAL_ENDING', $2, \
             p_subscription => (SELECT id FROM subscriptions WHERE user_id = $1))",
    )
    .bind::<Text, _>(user_id)
    .bind::<Jsonb, _>(serde_json::json!({ "trialEnd": trial_end }))
    .execute(conn)
    .await
    .map(drop)
}

/// Whether a kind's email and push are on for a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preference {
    /// The kind.
    pub kind: NotificationKind,
    /// Email on.
    pub email: bool,
    /// Push on.
    pub push: bool,
}

/// A person's preferences for every kind: their choices, else the kinds' defaults.
pub(crate) async fn preferences(conn: &mut impl Db, user_id: &str) -> QueryResult<Vec<Preference>> {
    let rows: Vec<(NotificationKind, bool, bool)> = notification_kinds::table
        .left_join(
            notification_preferences::table.on(notification_preferences::kind
                .eq(notification_kinds::kind)
                .and(notification_preferences::user_id.eq(user_id))),
        )
        .select((
            notification_kinds::kind,
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "coalesce(notification_preferences.email, notification_kinds.email_default)",
            ),
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "coalesce(notification_preferences.push, notification_kinds.push_default)",
            ),
        ))
        .load(conn)
        .await?;
    let mut preferences: Vec<Preference> = rows
        .into_iter()
        .map(|(kind, email, push)| Preference { kind, email, push })
        .collect();
    preferences.sort_by_key(|p| NotificationKind::ALL.iter().position(|k| *k == p.kind));
    Ok(preferences)
}

/// Sets a person's choices for the kinds named (the others keep theirs); `None` leaves that
/// channel as it was.
pub(crate) async fn set_preferences(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    changes: &[(NotificationKind, Option<bool>, Option<bool>)],
) -> QueryResult<()> {
    for (kind, email, push) in changes {
        diesel::sql_query(
            "INSERT INTO notification_preferences AS p (user_id, kind, email, push) \
             SELECT $1, k.kind, coalesce($3, k.email_default), coalesce($4, k.push_default) \
               FROM notification_kinds k WHERE k.kind = $2 \
             ON CONFLICT (user_id, kind) DO UPDATE SET \
               email = coalesce($3, p.email), push = coalesce($4, p.push), updated_at = now()",
        )
        .bind::<Text, _>(user_id)
        .bind::<Text, _>(kind)
        .bind::<Nullable<diesel::sql_types::Bool>, _>(email)
        .bind::<Nullable<diesel::sql_types::Bool>, _>(push)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// A push device.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = push_devices, check_for_backend(diesel::pg::Pg))]
pub struct PushDevice {
    /// The provider's token.
    pub token: String,
    /// Owner.
    pub user_id: String,
    /// Its platform.
    pub platform: PushPlatform,
    /// First registered.
    pub created_at: DateTime<Utc>,
    /// Last registered.
    pub updated_at: DateTime<Utc>,
}

impl PushDevice {
    /// Registers `token` as the user's (moving it from whoever had it).
    pub(crate) async fn register(
        conn: &mut AsyncPgConnection,
        user_id: &str,
        platform: PushPlatform,
        token: &str,
    ) -> QueryResult<PushDevice> {
        diesel::insert_into(push_devices::table)
            .values((
                push_devices::token.eq(token),
                push_devices::user_id.eq(user_id),
                push_devices::platform.eq(platform),
            ))
            .on_conflict(push_devices::token)
            .do_update()
            .set((
                push_devices::user_id.eq(user_id),
                push_devices::platform.eq(platform),
                push_devices::updated_at.eq(diesel::dsl::now),
            ))
            .returning(PushDevice::as_returning())
            .get_result(conn)
            .await
    }

    /// Forgets the user's `token`; whether it was theirs.
    pub(crate) async fn unregister(
        conn: &mut AsyncPgConnection,
        user_id: &str,
        token: &str,
    ) -> QueryResult<bool> {
        diesel::delete(
            push_devices::table
                .filter(push_devices::user_id.eq(user_id))
                .filter(push_devices::token.eq(token)),
        )
        .execute(conn)
        .await
        .map(|n| n > 0)
    }

    /// The user's devices.
    pub(crate) async fn of_user(conn: &mut impl Db, user_id: &str) -> QueryResult<Vec<PushDevice>> {
        push_devices::table
            .filter(push_devices::user_id.eq(user_id))
            .order(push_devices::created_at)
            .select(PushDevice::as_select())
            .load(conn)
            .await
    }

    /// Forgets `tokens` the provider called unregistered or invalid.
    pub(crate) async fn forget(conn: &mut impl Db, tokens: &[String]) -> QueryResult<usize> {
        diesel::delete(push_devices::table.filter(push_devices::token.eq_any(tokens)))
            .execute(conn)
            .await
    }
}

/// Writes `BFF_NOTIFY_CREDITS_LOW` where the ledger's trigger reads it.
pub(crate) async fn set_credits_low(conn: &mut impl Db, cents: i64) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE notification_settings SET credits_low_cents = $1 WHERE credits_low_cents <> $1",
    )
    .bind::<BigInt, _>(cents)
    .execute(conn)
    .await
    .map(drop)
}
