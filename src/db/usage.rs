//! Usage counters: how much of each metric a user used in a usage window.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::usage_counters;
use crate::db::subscriptions::Subscription;

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

impl Window {
    /// The current paid period when the subscription has one covering `now`,
    /// otherwise the calendar month (UTC) containing `now`.
    pub fn current(subscription: Option<&Subscription>, now: DateTime<Utc>) -> Window {
        if let Some((start, end)) = subscription.and_then(|s| s.current_period(now)) {
            return Window { start, end };
        }
        let start = Utc
            .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
            .single()
            .expect("the first of a month at midnight UTC exists");
        let (year, month) = if now.month() == 12 {
            (now.year() + 1, 1)
        } else {
            (now.year(), now.month() + 1)
        };
        let end = Utc
            .with_ymd_and_hms(year, month, 1, 0, 0, 0)
            .single()
            .expect("the first of a month at midnight UTC exists");
        Window { start, end }
    }
}

/// How much of `metric` the user used in the window starting at `window.start`.
pub async fn used(
    conn: &mut impl crate::db::request::Db,
    user_id: &str,
    metric: &str,
    window: Window,
) -> QueryResult<i32> {
    usage_counters::table
        .filter(usage_counters::user_id.eq(user_id))
        .filter(usage_counters::metric.eq(metric))
        .filter(usage_counters::window_start.eq(window.start))
        .select(usage_counters::count)
        .first::<i32>(conn)
        .await
        .optional()
        .map(|count| count.unwrap_or(0))
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
