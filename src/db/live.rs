//! Live updates' queries. The migrations' triggers notify [`CHANNEL`] with ids only; the
//! listening process reads the objects back here, each with its owner, in one statement per kind
//! for a whole batch of notifications. Nothing here takes a viewer from a request: the owner is
//! the one the notification names, and the reloaded rows go to that owner's subscribers only.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Int8, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;

use crate::db::credits::CreditAccount;
use crate::db::photo_jobs::PhotoJob;
use crate::db::plans::{self, Plan};
use crate::db::request::Db;
use crate::db::schema::{credit_accounts, plans as plans_table, subscriptions};
use crate::db::subscriptions::{BillingState, Subscription};

/// The channel the triggers notify.
pub(crate) const CHANNEL: &str = "bff_live";

/// What a notification says changed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Change {
    /// A photo job (created, changed or deleted).
    Job {
        /// Owner.
        user_id: String,
        /// Job id.
        id: i64,
    },
    /// A processing job's progress, and nothing else a viewer reads (passed on at most once
    /// per `BFF_LIVE_PROGRESS_INTERVAL_MS` per job).
    Progress {
        /// Owner.
        user_id: String,
        /// Job id.
        id: i64,
    },
    /// A credit account (a ledger row, or free photos spent).
    Credits {
        /// Owner.
        user_id: String,
    },
    /// A billing subscription.
    Billing {
        /// Owner.
        user_id: String,
    },
    /// A notification was written.
    Notification {
        /// Owner.
        user_id: String,
        /// Notification id.
        id: i64,
    },
    /// A statement changed what the user reads, at this version of theirs (their change log).
    Log {
        /// Owner.
        user_id: String,
        /// Their version after it.
        seq: i64,
    },
    /// The user was deleted: their live connections close.
    Gone {
        /// Who.
        user_id: String,
    },
}

#[derive(serde::Deserialize)]
struct Payload {
    t: String,
    u: String,
    id: Option<i64>,
    s: Option<i64>,
}

impl Change {
    /// Reads a notification's payload; `None` for anything else.
    pub(crate) fn parse(payload: &str) -> Option<Change> {
        let Payload { t, u, id, s } = serde_json::from_str(payload).ok()?;
        if let ("log", Some(seq)) = (t.as_str(), s) {
            return Some(Change::Log { user_id: u, seq });
        }
        match (t.as_str(), id) {
            ("job", Some(id)) => Some(Change::Job { user_id: u, id }),
            ("progress", Some(id)) => Some(Change::Progress { user_id: u, id }),
            ("credits", _) => Some(Change::Credits { user_id: u }),
            ("billing", _) => Some(Change::Billing { user_id: u }),
            ("gone", _) => Some(Change::Gone { user_id: u }),
            ("notification", Some(id)) => Some(Change::Notification { user_id: u, id }),
            _ => None,
        }
    }

    /// Whose object changed.
    pub(crate) fn user_id(&self) -> &str {
        match self {
            Change::Job { user_id, .. }
            | Change::Progress { user_id, .. }
            | Change::Credits { user_id }
            | Change::Billing { user_id }
            | Change::Notification { user_id, .. }
            | Change::Log { user_id, .. }
            | Change::Gone { user_id } => user_id,
        }
    }
}

/// A job as its subscribers see it: the row, or (once deleted) the row as it was then.
#[derive(QueryableByName, Clone, Debug)]
pub struct JobState {
    /// The row.
    #[diesel(embed)]
    pub job: PhotoJob,
    /// When it was deleted; `None` while it exists.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl JobState {
    /// The jobs named by (owner, id) pairs, each only if that owner's: live rows, and for the
    /// deleted ones their tombstones. One statement.
    pub async fn load(conn: &mut impl Db, keys: &[(String, i64)]) -> QueryResult<Vec<JobState>> {
        let (users, ids): (Vec<&str>, Vec<i64>) =
            keys.iter().map(|(u, id)| (u.as_str(), *id)).unzip();
        diesel::sql_query(
            "WITH k (user_id, id) AS (SELECT * FROM unnest($1::text[], $2::int8[])) \
             SELECT p.*, NULL::timestamptz AS deleted_at FROM photo_jobs p \
               JOIN k ON p.user_id = k.user_id AND p.id = k.id \
             UNION ALL \
             SELECT (jsonb_populate_record(NULL::photo_jobs, t.job)).*, t.deleted_at \
               FROM photo_job_tombstones t JOIN k ON t.user_id = k.user_id AND t.id = k.id \
              WHERE NOT EXISTS (SELECT 1 FROM photo_jobs p WHERE p.id = t.id)",
        )
        .bind::<Array<Text>, _>(users)
        .bind::<Array<Int8>, _>(ids)
        .load(conn)
        .await
    }

    /// The jobs of these owners changed or deleted at or after `since`: what a process that
    /// lost its listening connection may have missed.
    pub async fn changed_since(
        conn: &mut impl Db,
        user_ids: &[String],
        since: DateTime<Utc>,
    ) -> QueryResult<Vec<JobState>> {
        diesel::sql_query(
            "SELECT p.*, NULL::timestamptz AS deleted_at FROM photo_jobs p \
              WHERE p.user_id = ANY($1) AND p.updated_at >= $2 \
             UNION ALL \
             SELECT (jsonb_populate_record(NULL::photo_jobs, t.job)).*, t.deleted_at \
               FROM photo_job_tombstones t \
              WHERE t.user_id = ANY($1) AND t.deleted_at >= $2 \
                AND NOT EXISTS (SELECT 1 FROM photo_jobs p WHERE p.id = t.id)",
        )
        .bind::<Array<Text>, _>(user_ids)
        .bind::<Timestamptz, _>(since)
        .load(conn)
        .await
    }
}

impl CreditAccount {
    /// These users' credit accounts (absent for a user who never had one).
    pub async fn load_many(
        conn: &mut impl Db,
        user_ids: &[String],
    ) -> QueryResult<Vec<CreditAccount>> {
        credit_accounts::table
            .filter(credit_accounts::user_id.eq_any(user_ids))
            .select(CreditAccount::as_select())
            .load(conn)
            .await
    }
}

impl BillingState {
    /// These users' billing states, in two statements whatever their number.
    pub async fn load_many(
        conn: &mut impl Db,
        user_ids: &[String],
    ) -> QueryResult<HashMap<String, BillingState>> {
        let rows: Vec<(Subscription, Plan)> = subscriptions::table
            .inner_join(plans_table::table)
            .filter(subscriptions::user_id.eq_any(user_ids))
            .select((Subscription::as_select(), Plan::as_select()))
            .load(conn)
            .await?;
        let free = Plan::find(conn, plans::FREE).await?;
        let mut rows: HashMap<String, (Subscription, Plan)> = rows
            .into_iter()
            .map(|(s, p)| (s.user_id.clone(), (s, p)))
            .collect();
        Ok(user_ids
            .iter()
            .map(|user| {
                let (subscription, plan) = rows.remove(user).unzip();
                (
                    user.clone(),
                    BillingState::from_rows(subscription, plan, free.clone()),
                )
            })
            .collect())
    }
}

/// The database's clock: where a listening process marks how far it has heard.
pub(crate) async fn now(conn: &mut impl Db) -> QueryResult<DateTime<Utc>> {
    #[derive(QueryableByName)]
    struct Now {
        #[diesel(sql_type = Timestamptz)]
        now: DateTime<Utc>,
    }
    diesel::sql_query("SELECT now() AS now")
        .get_result::<Now>(conn)
        .await
        .map(|n| n.now)
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn notifications_name_what_changed_and_whose() {
        assert_eq!(
            Change::parse(r#"{"t": "job", "u": "user-1", "id": 7}"#),
            Some(Change::Job {
                user_id: "user-1".into(),
                id: 7
            })
        );
        assert_eq!(
            Change::parse(r#"{"t":"credits","u":"a"}"#),
            Some(Change::Credits {
                user_id: "a".into()
            })
        );
        assert_eq!(
            Change::parse(r#"{"t":"billing","u":"a"}"#).map(|c| c.user_id().to_owned()),
            Some("a".into())
        );
        assert_eq!(Change::parse(r#"{"t":"job","u":"a"}"#), None);
        assert_eq!(Change::parse("not json"), None);
    }
}
