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
    }
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
/// expired): one statement for every open WebSocket connection of a process.
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
        .select(session::token)
        .load(conn)
        .await
}

/// Which of these user ids are of people who still exist.
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
        .select(users::id)
        .load(conn)
        .await
}
