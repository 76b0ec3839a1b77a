//! Better Auth's tables, mapped by hand: Better Auth owns and migrates them, bff only reads
//! `"user"` and `session`. Column names are Better Auth's camelCase, quoted in SQL.

diesel::table! {
    /// Better Auth's users.
    #[sql_name = "user"]
    users (id) {
        id -> Text,
        name -> Text,
        email -> Text,
        #[sql_name = "emailVerified"]
        email_verified -> Bool,
        image -> Nullable<Text>,
        #[sql_name = "createdAt"]
        created_at -> Timestamptz,
        #[sql_name = "updatedAt"]
        updated_at -> Timestamptz,
        /// The admin plugin's roles, comma-separated (the column is added by bff's migrations
        /// when the plugin is not enabled, like the three after it).
        role -> Nullable<Text>,
        /// Whether the person is banned (see `banExpires`, and `ban_in_force` below).
        banned -> Nullable<Bool>,
        /// Why, as the admin wrote it.
        #[sql_name = "banReason"]
        ban_reason -> Nullable<Text>,
        /// When the ban ends (never when null).
        #[sql_name = "banExpires"]
        ban_expires -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Better Auth's sessions: a row per signed-in device, deleted on sign-out.
    session (id) {
        id -> Text,
        #[sql_name = "expiresAt"]
        expires_at -> Timestamptz,
        token -> Text,
        #[sql_name = "createdAt"]
        created_at -> Timestamptz,
        #[sql_name = "updatedAt"]
        updated_at -> Timestamptz,
        #[sql_name = "ipAddress"]
        ip_address -> Nullable<Text>,
        #[sql_name = "userAgent"]
        user_agent -> Nullable<Text>,
        #[sql_name = "userId"]
        user_id -> Text,
        /// The admin who opened this session as the user (the admin plugin's impersonation).
        #[sql_name = "impersonatedBy"]
        impersonated_by -> Nullable<Text>,
    }
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// Whether a ban holds now: `banned`, and no expiry or one still ahead. The one definition
    /// (a SQL function of bff's migrations, inlined by the planner), for every session lookup,
    /// the WebSocket checks and the worker's claim.
    fn bff_ban_in_force(
        banned: diesel::sql_types::Nullable<diesel::sql_types::Bool>,
        expires: diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    ) -> diesel::sql_types::Bool;
}

/// Whether the user row's ban holds now ([`bff_ban_in_force()`] over its columns).
pub fn ban_in_force() -> bff_ban_in_force<users::banned, users::ban_expires> {
    bff_ban_in_force(users::banned, users::ban_expires)
}

diesel::joinable!(session -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, session);

/// Better Auth's DDL, for `bff dev` and the tests only (production lets Better Auth migrate).
pub const DDL: &str = include_str!("better_auth.sql");

diesel::table! {
    /// The signing keys of Better Auth's `jwt()` plugin (present only when it is enabled).
    jwks (id) {
        id -> Text,
        #[sql_name = "publicKey"]
        public_key -> Text,
        #[sql_name = "privateKey"]
        private_key -> Text,
        #[sql_name = "createdAt"]
        created_at -> Timestamptz,
        #[sql_name = "expiresAt"]
        expires_at -> Nullable<Timestamptz>,
        alg -> Nullable<Text>,
        crv -> Nullable<Text>,
    }
}

/// The public key (a JWK) and algorithm of Better Auth's unexpired signing key `kid`; `None`
/// without one, and without a `jwks` table (Better Auth's `jwt()` plugin not installed).
pub async fn jwk(
    conn: &mut impl crate::db::request::Db,
    kid: &str,
) -> diesel::QueryResult<Option<(String, Option<String>)>> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let key = jwks::table
        .find(kid)
        .filter(
            jwks::expires_at
                .is_null()
                .or(jwks::expires_at.gt(diesel::dsl::now)),
        )
        .select((jwks::public_key, jwks::alg))
        .first::<(String, Option<String>)>(conn)
        .await;
    match key {
        Ok(key) => Ok(Some(key)),
        Err(diesel::result::Error::NotFound) => Ok(None),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("does not exist") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Which of these session tokens still sign someone in (the session exists and has not
/// expired, and its person is not banned): one statement for every open WebSocket connection
/// of a process.
pub async fn live_sessions(
    conn: &mut impl crate::db::request::Db,
    tokens: &[String],
) -> diesel::QueryResult<Vec<String>> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    session::table
        .inner_join(users::table)
        .filter(session::token.eq_any(tokens))
        .filter(session::expires_at.gt(diesel::dsl::now))
        .filter(diesel::dsl::not(ban_in_force()))
        .select(session::token)
        .load(conn)
        .await
}

/// Which of these user ids are of people who still exist and are not banned.
pub async fn existing_users(
    conn: &mut impl crate::db::request::Db,
    ids: &[String],
) -> diesel::QueryResult<Vec<String>> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    users::table
        .filter(users::id.eq_any(ids))
        .filter(diesel::dsl::not(ban_in_force()))
        .select(users::id)
        .load(conn)
        .await
}
