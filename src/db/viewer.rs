//! The session lookup, and everything about the viewer that fits in the same statement: their
//! user row, subscription and plans, credit account and usage in the current window. One
//! statement authenticates a request and answers `viewer { id subscription credits usage }`.
//! An operation that selects none of those gets the lean lookup (session and user only).

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bool, Int4, Int8, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryResult};
use diesel_async::RunQueryDsl;

use crate::db::credits::CreditAccount;
use crate::db::plans::{self, Plan, PlanCode};
use crate::db::positional::positional_row;
use crate::db::request::Db;
use crate::db::subscriptions::{BillingState, Subscription, SubscriptionStatus};
use crate::db::usage::{self, Window};

/// The signed-in user, as Better Auth's tables say, with what the viewer's own fields read.
#[derive(Clone, Debug)]
pub struct SessionUser {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// Avatar URL.
    pub image: Option<String>,
    /// Better Auth's roles (the admin plugin's comma-separated `user.role`).
    pub role: Option<String>,
    /// The ban that holds now, if any (an expired one is none).
    pub ban: Option<Ban>,
    /// The admin who opened this session as the user (Better Auth's impersonation); never
    /// for a JWT, which names no session.
    pub impersonated_by: Option<String>,
    /// The session's id (empty for a JWT, which names no session).
    pub session_id: String,
    /// When the session (or the JWT's user lookup) expires.
    pub session_expires_at: DateTime<Utc>,
    /// The viewer's billing, credits and usage, when the lookup read them.
    pub state: Option<ViewerState>,
}

/// A ban in force (Better Auth's `user.banned`, until `banExpires`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// When it ends; never when `None`.
    pub expires: Option<DateTime<Utc>>,
}

impl Ban {
    fn from_columns(in_force: bool, expires: Option<DateTime<Utc>>) -> Option<Ban> {
        in_force.then_some(Ban { expires })
    }
}

/// What the full lookup reads beside the user.
#[derive(Clone, Debug)]
pub struct ViewerState {
    /// Subscription and plans, as of the lookup.
    pub billing: BillingState,
    /// Credit account, as of the lookup.
    pub credits: CreditAccount,
    /// The usage window containing the lookup's time.
    pub usage_window: Window,
    /// Photos used in it.
    pub photos_used: i32,
    /// Bytes the viewer keeps in storage (uploads and results).
    pub storage_used: i64,
    /// The versions of the viewer's data and of everyone's (`viewer_versions`), as of the
    /// lookup: any write to what the viewer can read changes one of them.
    pub versions: Versions,
}

/// `viewer_versions` as the lookup read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Versions {
    /// The viewer's row (0 before their first write).
    pub viewer: i64,
    /// The row `'*'`: plans and credit packs.
    pub global: i64,
}

impl ViewerState {
    /// The earliest instant at which what the lookup read could change without a write: the
    /// usage window's end, the subscription's period or trial end.
    pub fn changes_at(&self) -> DateTime<Utc> {
        let mut at = self.usage_window.end;
        if let Some(subscription) = &self.billing.subscription {
            for end in [subscription.current_period_end, subscription.trial_end]
                .into_iter()
                .flatten()
            {
                if end > Utc::now() {
                    at = at.min(end);
                }
            }
        }
        at
    }
}

positional_row! {
    struct Row {
        user_id: Text => String,
        name: Text => String,
        email: Text => String,
        email_verified: Bool => bool,
        image: Nullable<Text> => Option<String>,
        role: Nullable<Text> => Option<String>,
        banned: Bool => bool,
        ban_expires: Nullable<Timestamptz> => Option<DateTime<Utc>>,
        session_id: Text => String,
        session_expires_at: Timestamptz => DateTime<Utc>,
        impersonated_by: Nullable<Text> => Option<String>,
        sub_plan: Nullable<Text> => Option<PlanCode>,
        sub_status: Nullable<Text> => Option<SubscriptionStatus>,
        sub_stripe_customer_id: Nullable<Text> => Option<String>,
        sub_stripe_subscription_id: Nullable<Text> => Option<String>,
        sub_stripe_price_id: Nullable<Text> => Option<String>,
        sub_current_period_start: Nullable<Timestamptz> => Option<DateTime<Utc>>,
        sub_current_period_end: Nullable<Timestamptz> => Option<DateTime<Utc>>,
        sub_trial_end: Nullable<Timestamptz> => Option<DateTime<Utc>>,
        sub_cancel_at_period_end: Nullable<Bool> => Option<bool>,
        sub_canceled_at: Nullable<Timestamptz> => Option<DateTime<Utc>>,
        plan_code: Nullable<Text> => Option<PlanCode>,
        plan_name: Nullable<Text> => Option<String>,
        plan_monthly_photo_quota: Nullable<Int4> => Option<i32>,
        plan_price_per_photo_cents: Nullable<Int8> => Option<i64>,
        plan_max_photos_per_job: Nullable<Int4> => Option<i32>,
        plan_monthly_price_cents: Nullable<Int8> => Option<i64>,
        plan_stripe_price_id: Nullable<Text> => Option<String>,
        free_code: Text => PlanCode,
        free_name: Text => String,
        free_monthly_photo_quota: Nullable<Int4> => Option<i32>,
        free_price_per_photo_cents: Int8 => i64,
        free_max_photos_per_job: Int4 => i32,
        free_monthly_price_cents: Int8 => i64,
        free_stripe_price_id: Nullable<Text> => Option<String>,
        balance_cents: Nullable<Int8> => Option<i64>,
        free_photos_used: Nullable<Int4> => Option<i32>,
        window_start: Timestamptz => DateTime<Utc>,
        window_end: Timestamptz => DateTime<Utc>,
        photos_used: Int4 => i32,
        plan_storage_bytes_limit: Nullable<Int8> => Option<i64>,
        free_storage_bytes_limit: Nullable<Int8> => Option<i64>,
        storage_used: Int8 => i64,
        viewer_version: Int8 => i64,
        global_version: Int8 => i64,
    }
}

/// Whom the statement looks up: by session token or by user id. Two types, so that each SQL
/// text has its own static query id and stays a cached prepared statement (diesel never caches
/// `sql_query`, and planning this join on every request cost more than running it).
pub(crate) trait Key: Send + Sync + 'static {
    /// The statement's text before and after the key's placeholder, built once.
    fn text() -> &'static (String, String);
}

/// By session token.
pub(crate) struct ByToken;
/// By user id (a verified Better Auth JWT).
pub(crate) struct ByUserId;

impl Key for ByToken {
    fn text() -> &'static (String, String) {
        static TEXT: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| statement(true))
    }
}

impl Key for ByUserId {
    fn text() -> &'static (String, String) {
        static TEXT: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| statement(false))
    }
}

/// The lookup as a query diesel can cache as a prepared statement.
struct Lookup<'a, K> {
    key: &'a str,
    kind: std::marker::PhantomData<K>,
}

impl<K: Key> diesel::query_builder::QueryId for Lookup<'_, K> {
    type QueryId = Lookup<'static, K>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<K: Key> diesel::query_builder::QueryFragment<diesel::pg::Pg> for Lookup<'_, K> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        let (before, after) = K::text();
        out.push_sql(before);
        out.push_bind_param::<Text, _>(&self.key)?;
        out.push_sql(after);
        Ok(())
    }
}

impl<K> diesel::query_builder::Query for Lookup<'_, K> {
    type SqlType = diesel::sql_types::Untyped;
}

/// The statement, for a session (`from` joins `"session"`) or a user id. Its usage window is
/// the one definition in [`usage::window_sql`], on the database's clock.
fn statement(by_token: bool) -> (String, String) {
    let (identity, from, filter) = if by_token {
        (
            "s.id AS session_id, s.\"expiresAt\" AS session_expires_at, \
             s.\"impersonatedBy\" AS impersonated_by",
            "\"session\" s JOIN \"user\" u ON u.id = s.\"userId\"",
            ("s.token = ", " AND s.\"expiresAt\" > now()"),
        )
    } else {
        (
            "'' AS session_id, now() AS session_expires_at, NULL::text AS impersonated_by",
            "\"user\" u",
            ("u.id = ", ""),
        )
    };
    let (filter, after) = filter;
    let before = format!(
        "SELECT u.id AS user_id, u.name, u.email, u.\"emailVerified\" AS email_verified, u.image, u.role,
           bff_ban_in_force(u.banned, u.\"banExpires\") AS banned, u.\"banExpires\" AS ban_expires,
           {identity},
           sub.plan AS sub_plan, sub.status AS sub_status,
           sub.stripe_customer_id AS sub_stripe_customer_id,
           sub.stripe_subscription_id AS sub_stripe_subscription_id,
           sub.stripe_price_id AS sub_stripe_price_id,
           sub.current_period_start AS sub_current_period_start,
           sub.current_period_end AS sub_current_period_end, sub.trial_end AS sub_trial_end,
           sub.cancel_at_period_end AS sub_cancel_at_period_end, sub.canceled_at AS sub_canceled_at,
           p.code AS plan_code, p.name AS plan_name, p.monthly_photo_quota AS plan_monthly_photo_quota,
           p.price_per_photo_cents AS plan_price_per_photo_cents,
           p.max_photos_per_job AS plan_max_photos_per_job,
           p.monthly_price_cents AS plan_monthly_price_cents, p.stripe_price_id AS plan_stripe_price_id,
           f.code AS free_code, f.name AS free_name, f.monthly_photo_quota AS free_monthly_photo_quota,
           f.price_per_photo_cents AS free_price_per_photo_cents,
           f.max_photos_per_job AS free_max_photos_per_job,
           f.monthly_price_cents AS free_monthly_price_cents, f.stripe_price_id AS free_stripe_price_id,
           ca.balance_cents, ca.free_photos_used,
           win.start AS window_start, win.\"end\" AS window_end,
           COALESCE((SELECT uc.count FROM usage_counters uc
                     WHERE uc.user_id = u.id AND uc.metric = '{metric}' AND uc.window_start = win.start), 0)
             AS photos_used,
           p.storage_bytes_limit AS plan_storage_bytes_limit,
           f.storage_bytes_limit AS free_storage_bytes_limit,
           COALESCE((SELECT sum(pu.byte_size) FROM photo_uploads pu WHERE pu.user_id = u.id), 0)::int8
             AS storage_used,
           COALESCE((SELECT vv.version FROM viewer_versions vv WHERE vv.user_id = u.id), 0)
             AS viewer_version,
           COALESCE((SELECT vg.version FROM viewer_versions vg WHERE vg.user_id = '*'), 0)
             AS global_version
         FROM {from}
         JOIN plans f ON f.code = '{free}'
         LEFT JOIN subscriptions sub ON sub.user_id = u.id
         LEFT JOIN plans p ON p.code = sub.plan
         LEFT JOIN credit_accounts ca ON ca.user_id = u.id
         {window}
         WHERE {filter}",
        metric = usage::PHOTOS,
        free = plans::FREE,
        window = usage::window_sql(),
    );
    (before, after.to_owned())
}

/// The lean lookup's row: the user's columns, then the ban's and the session's.
#[derive(diesel::Queryable)]
struct LeanRow {
    id: String,
    name: String,
    email: String,
    email_verified: bool,
    image: Option<String>,
    role: Option<String>,
    banned: bool,
    ban_expires: Option<DateTime<Utc>>,
    session_id: String,
    session_expires_at: DateTime<Utc>,
    impersonated_by: Option<String>,
}

impl SessionUser {
    /// `IMPERSONATION_NOT_ALLOWED` when this session is an admin's impersonation, for an
    /// action (`what`) only the person may take.
    pub fn in_person(&self, what: &'static str) -> Result<(), crate::error::AppError> {
        match &self.impersonated_by {
            Some(_) => Err(crate::error::AppError::ImpersonationNotAllowed(what)),
            None => Ok(()),
        }
    }

    /// The live session with this token, its user and their state.
    pub async fn find_by_token(
        conn: &mut impl Db,
        token: &str,
    ) -> QueryResult<Option<SessionUser>> {
        Self::load::<ByToken>(conn, token).await
    }

    /// The user a verified JWT names, if the user still exists, and their state.
    pub async fn find_by_user_id(
        conn: &mut impl Db,
        user_id: &str,
    ) -> QueryResult<Option<SessionUser>> {
        Self::load::<ByUserId>(conn, user_id).await
    }

    /// The live session with this token and its user only (no state): the lean lookup.
    pub async fn identify_by_token(
        conn: &mut impl Db,
        token: &str,
    ) -> QueryResult<Option<SessionUser>> {
        use crate::db::better_auth::{ban_in_force, session, users};
        use diesel::{ExpressionMethods, QueryDsl};
        let row = session::table
            .inner_join(users::table)
            .filter(session::token.eq(token))
            .filter(session::expires_at.gt(diesel::dsl::now))
            .select((
                users::id,
                users::name,
                users::email,
                users::email_verified,
                users::image,
                users::role,
                ban_in_force(),
                users::ban_expires,
                session::id,
                session::expires_at,
                session::impersonated_by,
            ))
            .first::<LeanRow>(conn)
            .await
            .optional()?;
        Ok(row.map(|row| SessionUser {
            ban: Ban::from_columns(row.banned, row.ban_expires),
            id: row.id,
            name: row.name,
            email: row.email,
            email_verified: row.email_verified,
            image: row.image,
            role: row.role,
            impersonated_by: row.impersonated_by,
            session_id: row.session_id,
            session_expires_at: row.session_expires_at,
            state: None,
        }))
    }

    async fn load<K: Key>(conn: &mut impl Db, key: &str) -> QueryResult<Option<SessionUser>> {
        let lookup = Lookup::<K> {
            key,
            kind: std::marker::PhantomData,
        };
        let row: Option<Row> = lookup.get_result(conn).await.optional()?;
        Ok(row.map(SessionUser::from))
    }
}

impl From<Row> for SessionUser {
    fn from(row: Row) -> SessionUser {
        let free = Plan {
            code: row.free_code,
            name: row.free_name,
            monthly_photo_quota: row.free_monthly_photo_quota,
            price_per_photo_cents: row.free_price_per_photo_cents,
            max_photos_per_job: row.free_max_photos_per_job,
            monthly_price_cents: row.free_monthly_price_cents,
            stripe_price_id: row.free_stripe_price_id,
            storage_bytes_limit: row.free_storage_bytes_limit,
        };
        let subscribed = match (
            row.plan_code,
            row.plan_name,
            row.plan_price_per_photo_cents,
            row.plan_max_photos_per_job,
            row.plan_monthly_price_cents,
        ) {
            (Some(code), Some(name), Some(price), Some(max), Some(monthly)) => Some(Plan {
                code,
                name,
                monthly_photo_quota: row.plan_monthly_photo_quota,
                price_per_photo_cents: price,
                max_photos_per_job: max,
                monthly_price_cents: monthly,
                stripe_price_id: row.plan_stripe_price_id,
                storage_bytes_limit: row.plan_storage_bytes_limit,
            }),
            _ => None,
        };
        let subscription = match (row.sub_plan, row.sub_status) {
            (Some(plan), Some(status)) => Some(Subscription {
                user_id: row.user_id.clone(),
                plan,
                status,
                stripe_customer_id: row.sub_stripe_customer_id,
                stripe_subscription_id: row.sub_stripe_subscription_id,
                stripe_price_id: row.sub_stripe_price_id,
                current_period_start: row.sub_current_period_start,
                current_period_end: row.sub_current_period_end,
                trial_end: row.sub_trial_end,
                cancel_at_period_end: row.sub_cancel_at_period_end.unwrap_or(false),
                canceled_at: row.sub_canceled_at,
            }),
            _ => None,
        };
        let state = ViewerState {
            billing: BillingState::from_rows(subscription, subscribed, free),
            credits: CreditAccount {
                user_id: row.user_id.clone(),
                balance_cents: row.balance_cents.unwrap_or(0),
                free_photos_used: row.free_photos_used.unwrap_or(0),
            },
            usage_window: Window {
                start: row.window_start,
                end: row.window_end,
            },
            photos_used: row.photos_used,
            storage_used: row.storage_used,
            versions: Versions {
                viewer: row.viewer_version,
                global: row.global_version,
            },
        };
        SessionUser {
            id: row.user_id,
            name: row.name,
            email: row.email,
            email_verified: row.email_verified,
            image: row.image,
            role: row.role,
            ban: Ban::from_columns(row.banned, row.ban_expires),
            impersonated_by: row.impersonated_by,
            session_id: row.session_id,
            session_expires_at: row.session_expires_at,
            state: Some(state),
        }
    }
}
