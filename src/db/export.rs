//! What `GET /account/export` reads: everything bff holds about one person, as JSON built by
//! PostgreSQL, a page at a time (keyset pagination), always `WHERE user_id = $viewer`. The
//! caller reads it in one read-only repeatable-read transaction, so the export is one
//! consistent snapshot however long it takes.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Money as the API shows it: cents as a decimal string with two places ("-0.05", "12.50"),
/// the text of [`crate::graphql::scalars::Decimal`]. The one place the export formats money;
/// a test checks it against `Decimal` on edge values. Multiplied, not divided: numeric
/// division rounds past 16 digits, and the format has room for any `bigint`.
macro_rules! money {
    ($cents:literal) => {
        concat!(
            "to_char((",
            $cents,
            ") * 0.01, 'FM99999999999999999990.00')"
        )
    };
}

/// [`money!`] of a column `cents` (for tests: `SELECT {MONEY} FROM … AS v(cents)`).
pub const MONEY: &str = money!("cents");

/// Rows per page of the ledger, purchases and uploads.
pub const PAGE: i64 = 1000;
/// Jobs per page (each carries its photos).
pub const JOB_PAGE: i64 = 500;

#[derive(QueryableByName)]
struct Document {
    #[diesel(sql_type = Nullable<Text>)]
    doc: Option<String>,
}

/// One row of a page: its id (the next page's cursor) and its JSON.
#[derive(QueryableByName, Debug)]
pub struct Row {
    /// Keyset cursor.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// The row as a JSON object.
    #[diesel(sql_type = Text)]
    pub doc: String,
}

/// The person and the small parts, as one JSON object: `user` (Better Auth's row), `sessions`
/// (no tokens), `accounts` (providers, no secrets), `subscription`, `subscriptionHistory`,
/// `usage`, `credits`, `notificationPreferences` and `pushDevices` (no tokens). `None` when
/// the user is gone.
pub async fn head(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<Option<String>> {
    let head: Document = diesel::sql_query(concat!(
        "SELECT json_build_object(
           'user', json_build_object('id', u.id, 'name', u.name, 'email', u.email,
               'emailVerified', u.\"emailVerified\", 'image', u.image,
               'createdAt', u.\"createdAt\", 'updatedAt', u.\"updatedAt\"),
           'sessions', COALESCE((SELECT json_agg(json_build_object('createdAt', s.\"createdAt\",
               'expiresAt', s.\"expiresAt\", 'ipAddress', s.\"ipAddress\",
               'userAgent', s.\"userAgent\") ORDER BY s.\"createdAt\")
               FROM session s WHERE s.\"userId\" = u.id), '[]'),
           'accounts', COALESCE((SELECT json_agg(json_build_object('providerId', a.\"providerId\",
               'accountId', a.\"accountId\", 'createdAt', a.\"createdAt\") ORDER BY a.\"createdAt\")
               FROM account a WHERE a.\"userId\" = u.id), '[]'),
           'subscription', (SELECT json_build_object('plan', s.plan, 'status', s.status,
               'currentPeriodStart', s.current_period_start,
               'currentPeriodEnd', s.current_period_end, 'trialEnd', s.trial_end,
               'cancelAtPeriodEnd', s.cancel_at_period_end, 'canceledAt', s.canceled_at,
               'stripeSubscriptionId', s.stripe_subscription_id,
               'stripeCustomerId', s.stripe_customer_id, 'createdAt', s.created_at)
               FROM subscriptions s WHERE s.user_id = u.id),
           'subscriptionHistory', COALESCE((SELECT json_agg(json_build_object('kind', h.kind,
               'amount', ",
        money!("h.amount_cents"),
        ",
               'currency', h.currency, 'occurredAt', h.occurred_at) ORDER BY h.occurred_at, h.id)
               FROM subscription_history h WHERE h.user_id = u.id), '[]'),
           'usage', COALESCE((SELECT json_agg(json_build_object('metric', c.metric,
               'windowStart', c.window_start, 'windowEnd', c.window_end, 'count', c.count)
               ORDER BY c.window_start, c.metric)
               FROM usage_counters c WHERE c.user_id = u.id), '[]'),
           'credits', (SELECT json_build_object(
               'balance', ",
        money!("a.balance_cents"),
        ",
               'freePhotosUsed', a.free_photos_used)
               FROM credit_accounts a WHERE a.user_id = u.id),
           'notificationPreferences', COALESCE((SELECT json_agg(json_build_object(
               'kind', p.kind, 'email', p.email, 'push', p.push, 'updatedAt', p.updated_at)
               ORDER BY p.kind) FROM notification_preferences p WHERE p.user_id = u.id), '[]'),
           'pushDevices', COALESCE((SELECT json_agg(json_build_object('platform', d.platform,
               'createdAt', d.created_at, 'updatedAt', d.updated_at) ORDER BY d.created_at)
               FROM push_devices d WHERE d.user_id = u.id), '[]')
         )::text AS doc
         FROM \"user\" u WHERE u.id = $1",
    ))
    .bind::<Text, _>(user_id)
    .get_result::<Document>(conn)
    .await
    .optional()?
    .unwrap_or(Document { doc: None });
    Ok(head.doc)
}

/// A page of notifications after row `after`, oldest first, each with its deliveries.
pub async fn notifications(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    after: i64,
) -> QueryResult<Vec<Row>> {
    page(
        conn,
        "SELECT n.id, json_build_object('kind', n.kind, 'facts', n.facts,
             'createdAt', n.created_at, 'readAt', n.read_at,
             'deliveries', COALESCE((SELECT json_agg(json_build_object('channel', d.channel,
                 'state', d.state, 'attempts', d.attempts, 'finishedAt', d.finished_at)
                 ORDER BY d.channel) FROM notification_deliveries d
                 WHERE d.notification_id = n.id AND d.user_id = $1), '[]'))::text AS doc
         FROM notifications n WHERE n.user_id = $1 AND n.id > $2 ORDER BY n.id LIMIT $3",
        user_id,
        after,
        PAGE,
    )
    .await
}

/// A page of the credit ledger after row `after`, oldest first.
pub async fn ledger(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    after: i64,
) -> QueryResult<Vec<Row>> {
    page(
        conn,
        concat!(
            "SELECT l.id, json_build_object('kind', l.kind,
             'amount', ",
            money!("l.amount_cents"),
            ",
             'balanceAfter', ",
            money!("l.balance_after_cents"),
            ",
             'description', l.description, 'createdAt', l.created_at)::text AS doc
         FROM credit_ledger l WHERE l.user_id = $1 AND l.id > $2 ORDER BY l.id LIMIT $3",
        ),
        user_id,
        after,
        PAGE,
    )
    .await
}

/// A page of purchases after row `after`, oldest first.
pub async fn purchases(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    after: i64,
) -> QueryResult<Vec<Row>> {
    page(
        conn,
        concat!(
            "SELECT p.id, json_build_object('pack', p.pack, 'status', p.status,
             'amount', ",
            money!("p.amount_cents"),
            ", 'currency', p.currency,
             'credits', ",
            money!("p.credits_cents"),
            ",
             'refundedAmount', ",
            money!("p.refunded_amount_cents"),
            ",
             'creditsReversed', ",
            money!("p.credits_reversed_cents"),
            ",
             'stripeCheckoutSessionId', p.stripe_checkout_session_id,
             'createdAt', p.created_at, 'completedAt', p.completed_at)::text AS doc
         FROM purchases p WHERE p.user_id = $1 AND p.id > $2 ORDER BY p.id LIMIT $3",
        ),
        user_id,
        after,
        PAGE,
    )
    .await
}

/// A page of photo jobs after row `after`, oldest first, each with `photos` (in order, each
/// with its object's `key`, which the caller turns into a link) and its `resultKey`.
pub async fn jobs(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    after: i64,
) -> QueryResult<Vec<Row>> {
    page(
        conn,
        concat!(
            "SELECT j.id, json_build_object('id', j.id, 'status', j.status, 'prompt', j.prompt,
             'groupName', j.group_name, 'photoCount', j.photo_count,
             'cost', ",
            money!("j.cost_cents"),
            ",
             'freePhotosApplied', j.free_photos_applied, 'failureReason', j.failure_reason,
             'createdAt', j.created_at, 'startedAt', j.started_at, 'finishedAt', j.finished_at,
             'resultKey', j.result_key,
             'photos', COALESCE((SELECT json_agg(json_build_object('fileName', p.file_name,
                 'contentType', p.content_type, 'byteSize', p.byte_size,
                 'uploadedAt', p.created_at, 'key', p.object_key) ORDER BY p.position)
                 FROM photo_uploads p WHERE p.photo_job_id = j.id AND p.purpose = 'PHOTO'
                   AND p.user_id = $1), '[]'))::text AS doc
         FROM photo_jobs j WHERE j.user_id = $1 AND j.id > $2 ORDER BY j.id LIMIT $3",
        ),
        user_id,
        after,
        JOB_PAGE,
    )
    .await
}

/// A page of uploads no job has claimed yet, after row `after`.
pub async fn unattached_uploads(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    after: i64,
) -> QueryResult<Vec<Row>> {
    page(
        conn,
        "SELECT p.id, json_build_object('fileName', p.file_name, 'contentType', p.content_type,
             'byteSize', p.byte_size, 'uploadedAt', p.created_at, 'key', p.object_key)::text AS doc
         FROM photo_uploads p WHERE p.user_id = $1 AND p.photo_job_id IS NULL
           AND p.purpose = 'PHOTO' AND p.id > $2 ORDER BY p.id LIMIT $3",
        user_id,
        after,
        PAGE,
    )
    .await
}

async fn page(
    conn: &mut AsyncPgConnection,
    sql: &'static str,
    user_id: &str,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<Row>> {
    diesel::sql_query(sql)
        .bind::<Text, _>(user_id)
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
}
