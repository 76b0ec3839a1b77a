//! Which bff user each Stripe customer is (`stripe_customers`).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::better_auth::users;
use crate::db::schema::stripe_customers;

/// Whether a Better Auth user with this id exists.
pub(crate) async fn user_exists(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<bool> {
    users::table
        .find(user_id)
        .count()
        .get_result::<i64>(conn)
        .await
        .map(|n| n > 0)
}

/// The user a customer belongs to.
pub(crate) async fn user_for_customer(
    conn: &mut AsyncPgConnection,
    customer: &str,
) -> QueryResult<Option<String>> {
    stripe_customers::table
        .filter(stripe_customers::customer_id.eq(customer))
        .select(stripe_customers::user_id)
        .first(conn)
        .await
        .optional()
}

/// The customer of a user.
pub(crate) async fn customer_for_user(
    conn: &mut AsyncPgConnection,
    user_id: &str,
) -> QueryResult<Option<String>> {
    stripe_customers::table
        .find(user_id)
        .select(stripe_customers::customer_id)
        .first(conn)
        .await
        .optional()
}

/// Remembers which user a Stripe customer is (the first answer stays).
pub(crate) async fn remember(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    customer: &str,
) -> QueryResult<()> {
    diesel::insert_into(stripe_customers::table)
        .values((
            stripe_customers::user_id.eq(user_id),
            stripe_customers::customer_id.eq(customer),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|_| ())
}
