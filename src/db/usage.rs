//! Usage counters: how much of each metric a user used in a usage window.
//!
//! The usage window is defined once, here, in SQL on the database's clock ([`window_sql`]): the
//! subscription's current paid period while it is in good standing and covers now, otherwise
//! the calendar month (UTC). The session lookup (`db::viewer`) shows it and the money path
//! (`db::photo_jobs::money`) charges it, both through this one definition, so what is charged
//! and what is shown cannot disagree at a boundary.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Int4, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::usage_counters;
use crate::db::subscriptions::GOOD_STANDING;

/// The metered resource: photos processed.
pub const PHOTOS: &str = "PHOTOS";

/// A usage window, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

/// The usage window of the `subscriptions` row aliased `sub` (all NULL when the user has
/// none), as a lateral subquery `win (start, "end")` to join after it.
pub fn window_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let good = GOOD_STANDING
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let in_period = format!(
            "sub.status IN ({good}) AND sub.current_period_start <= now() \
             AND now() < sub.current_period_end"
        );
        let month = "date_trunc('month', now() AT TIME ZONE 'UTC')";
        format!(
            "CROSS JOIN LATERAL (SELECT \
               CASE WHEN {in_period} THEN sub.current_period_start \
                    ELSE {month} AT TIME ZONE 'UTC' END AS start, \
               CASE WHEN {in_period} THEN sub.current_period_end \
                    ELSE ({month} + interval '1 month') AT TIME ZONE 'UTC' END AS \"end\") win"
        )
    })
}

#[derive(QueryableByName)]
struct Current {
    #[diesel(sql_type = Timestamptz)]
    window_start: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    window_end: DateTime<Utc>,
    #[diesel(sql_type = Int4)]
    used: i32,
}

/// The user's current usage window and how much of `metric` they used in it. One statement.
pub async fn current(
    conn: &mut impl crate::db::request::Db,
    user_id: &str,
    metric: &str,
) -> QueryResult<(Window, i32)> {
    let row: Current = diesel::sql_query(format!(
        "SELECT win.start AS window_start, win.\"end\" AS window_end, \
           COALESCE((SELECT uc.count FROM usage_counters uc WHERE uc.user_id = $1 \
                     AND uc.metric = $2 AND uc.window_start = win.start), 0) AS used \
         FROM (SELECT $1::text AS user_id) u \
         LEFT JOIN subscriptions sub ON sub.user_id = u.user_id {}",
        window_sql()
    ))
    .bind::<Text, _>(user_id)
    .bind::<Text, _>(metric)
    .get_result(conn)
    .await?;
    Ok((
        Window {
            start: row.window_start,
            end: row.window_end,
        },
        row.used,
    ))
}

/// Adds `amount` to the user's counter for `metric` in `window` (creating it), in the caller's
/// transaction; a negative amount gives usage back, never below zero.
pub async fn add(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    metric: &str,
    window: Window,
    amount: i32,
) -> QueryResult<()> {
    use diesel::upsert::excluded;
    diesel::insert_into(usage_counters::table)
        .values((
            usage_counters::user_id.eq(user_id),
            usage_counters::metric.eq(metric),
            usage_counters::window_start.eq(window.start),
            usage_counters::window_end.eq(window.end),
            usage_counters::count.eq(amount.max(0)),
        ))
        .on_conflict((
            usage_counters::user_id,
            usage_counters::metric,
            usage_counters::window_start,
        ))
        .do_update()
        .set((
            usage_counters::count.eq(diesel::dsl::sql::<diesel::sql_types::Integer>(
                "GREATEST(usage_counters.count + ",
            )
            .bind::<diesel::sql_types::Integer, _>(amount)
            .sql(", 0)")),
            usage_counters::updated_at.eq(excluded(usage_counters::updated_at)),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Gives back `amount` of `metric` to the counter whose window contains `at` (the moment the
/// usage was counted), never below zero.
pub async fn give_back(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    metric: &str,
    at: DateTime<Utc>,
    amount: i32,
) -> QueryResult<()> {
    diesel::update(
        usage_counters::table
            .filter(usage_counters::user_id.eq(user_id))
            .filter(usage_counters::metric.eq(metric))
            .filter(usage_counters::window_start.le(at))
            .filter(usage_counters::window_end.gt(at)),
    )
    .set((
        usage_counters::count.eq(diesel::dsl::sql::<diesel::sql_types::Integer>(
            "GREATEST(count - ",
        )
        .bind::<diesel::sql_types::Integer, _>(amount)
        .sql(", 0)")),
        usage_counters::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
    .map(|_| ())
}
