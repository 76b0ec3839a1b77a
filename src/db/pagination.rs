//! Keyset pagination, newest first: a page continues strictly after the `(created_at, id)`
//! of the last row seen, so rows inserted meanwhile never shift a page or repeat one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

/// The position of a row in a newest-first list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The row's creation time.
    pub created_at: DateTime<Utc>,
    /// The row's id, the tiebreaker.
    pub id: i64,
}

/// PostgreSQL's earliest `timestamptz` (4714-11-24 BC), in microseconds since the Unix epoch.
const MIN_TIMESTAMP_MICROS: i64 = -210_866_803_200_000_000;

/// Most rows one page may ask for.
pub(crate) const MAX_PAGE_SIZE: i32 = 100;

impl Cursor {
    /// The opaque string clients pass back as `after`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}:{}",
            self.created_at.timestamp_micros(),
            self.id
        ))
    }

    /// Reads a string made by [`Cursor::encode`]; `None` for anything else, including times
    /// PostgreSQL's `timestamptz` cannot hold (which would fail the query as a server error).
    pub fn decode(value: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let (micros, id) = text.split_once(':')?;
        let micros: i64 = micros.parse().ok()?;
        // chrono's latest time (year 262142) is earlier than PostgreSQL's, so only the start
        // needs checking.
        if micros < MIN_TIMESTAMP_MICROS {
            return None;
        }
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros)?,
            id: id.parse().ok()?,
        })
    }
}

/// Gives a model of a user-owned table with `id`, `user_id` and `created_at` its owner-scoped
/// reads: `cursor`, `page` (newest first, after a cursor), `count` and `find`. Every query
/// filters by the owner.
macro_rules! owned_newest_first {
    ($model:ident, $table:ident, $what:literal) => {
        impl $model {
            /// The position of this row in its newest-first list.
            pub(crate) fn cursor(&self) -> $crate::db::pagination::Cursor {
                $crate::db::pagination::Cursor {
                    created_at: self.created_at,
                    id: self.id,
                }
            }

            #[doc = concat!("Up to `limit` of the user's ", $what, ", newest first, after `after`.")]
            pub(crate) async fn page(
                conn: &mut impl $crate::db::request::Db,
                user_id: &str,
                after: Option<$crate::db::pagination::Cursor>,
                limit: i64,
            ) -> diesel::QueryResult<Vec<$model>> {
                let mut query = $table::table
                    .filter($table::user_id.eq(user_id))
                    .select($model::as_select())
                    .order(($table::created_at.desc(), $table::id.desc()))
                    .limit(limit)
                    .into_boxed();
                if let Some(c) = after {
                    query = query.filter(
                        $table::created_at
                            .lt(c.created_at)
                            .or($table::created_at.eq(c.created_at).and($table::id.lt(c.id))),
                    );
                }
                query.load(conn).await
            }

            #[doc = concat!("How many ", $what, " the user has.")]
            pub(crate) async fn count(
                conn: &mut impl $crate::db::request::Db,
                user_id: &str,
            ) -> diesel::QueryResult<i64> {
                $table::table
                    .filter($table::user_id.eq(user_id))
                    .count()
                    .get_result(conn)
                    .await
            }

            #[doc = concat!("One of the user's ", $what, "; `None` for other users' and unknown ids alike.")]
            pub(crate) async fn find(
                conn: &mut impl $crate::db::request::Db,
                user_id: &str,
                id: i64,
            ) -> diesel::QueryResult<Option<$model>> {
                $table::table
                    .filter($table::user_id.eq(user_id))
                    .filter($table::id.eq(id))
                    .select($model::as_select())
                    .first(conn)
                    .await
                    .optional()
            }
        }
    };
}
pub(crate) use owned_newest_first;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_out_of_range_times_are_not_cursors() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: 42,
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("LTgwMDAwMDAwMDAwMDAwMDAwMDA6MQ"), None);
        let earliest = URL_SAFE_NO_PAD.encode(format!("{MIN_TIMESTAMP_MICROS}:1"));
        assert!(Cursor::decode(&earliest).is_some());
        let too_late = URL_SAFE_NO_PAD.encode(format!("{}:1", i64::MAX));
        assert_eq!(Cursor::decode(&too_late), None);
    }
}
