//! The Checkout Sessions bff opened (`checkout_sessions`): recorded when Stripe answers, so
//! that a person's deletion expires those still open (a trigger queues them), and so that the
//! webhook of one that completes anyway knows its person is gone (`user_id` is then NULL).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::states::db_enum;

db_enum! {
    /// Where a Checkout Session is (`checkout_sessions.state`).
    CheckoutState {
        /// Opened; not completed or expired yet.
        Open => "OPEN",
        /// Completed for a person who exists.
        Completed => "COMPLETED",
        /// Expired (or its payment failed) without money.
        Expired => "EXPIRED",
        /// Completed for a person who is gone: its money queued to go back.
        Returned => "RETURNED",
    }
}

/// A Checkout Session bff opened, as recorded.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct Checkout {
    /// Its person; `None` once they were deleted.
    #[diesel(sql_type = Nullable<Text>)]
    pub user_id: Option<String>,
    /// Where it is.
    #[diesel(sql_type = Text)]
    pub state: CheckoutState,
}

/// Records a Checkout Session `id` Stripe opened for `user_id` (a retried request's answer
/// is the same session: recorded once).
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    id: &str,
    user_id: &str,
    mode: &str,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO checkout_sessions (stripe_checkout_session_id, user_id, mode, expires_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(id)
    .bind::<Text, _>(user_id)
    .bind::<Text, _>(mode)
    .bind::<Timestamptz, _>(expires_at)
    .execute(conn)
    .await
    .map(drop)
}

/// The recorded session `id`, locked until the caller's transaction ends, and its person too
/// (`FOR KEY SHARE`), in the order a deletion takes them (the person, then their rows): a
/// deletion running waits for the webhook's transaction, or the webhook for the deletion's and
/// then reads the person gone — never a deadlock. `None` for a session bff did not open.
pub(crate) async fn lock(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<Option<Checkout>> {
    diesel::sql_query(
        "SELECT 1 FROM \"user\" u JOIN checkout_sessions c ON c.user_id = u.id \
         WHERE c.stripe_checkout_session_id = $1 FOR KEY SHARE OF u",
    )
    .bind::<Text, _>(id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "SELECT user_id, state FROM checkout_sessions \
         WHERE stripe_checkout_session_id = $1 FOR UPDATE",
    )
    .bind::<Text, _>(id)
    .get_result(conn)
    .await
    .optional()
}

/// Moves session `id` to `state`.
pub(crate) async fn set_state(
    conn: &mut AsyncPgConnection,
    id: &str,
    state: CheckoutState,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE checkout_sessions SET state = $2 WHERE stripe_checkout_session_id = $1",
    )
    .bind::<Text, _>(id)
    .bind::<Text, _>(state)
    .execute(conn)
    .await
    .map(drop)
}
