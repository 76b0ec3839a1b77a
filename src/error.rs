//! Errors. [`AppError`] is what a resolver fails with, mapped to a stable `extensions.code`;
//! internal errors are logged here and reach the client only as "Internal server error" (the
//! pipeline adds the request id). A database that is unreachable, a pool that is exhausted and a
//! statement (or lock wait) past `statement_timeout` are [`code::SERVICE_UNAVAILABLE`]: the same
//! request may succeed when retried. [`StartupError`] is what a command-line path fails with.

use std::borrow::Cow;

use async_graphql::ErrorExtensions;

/// The codes clients may rely on (`docs/api.md`).
pub mod code {
    /// No valid session (or service token) where one is needed.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Authenticated, but this credential may not do this.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// The credential is good, but its person is banned (until `extensions.bannedUntil`, or
    /// indefinitely without it): refused on every request and connection.
    pub const ACCOUNT_BANNED: &str = "ACCOUNT_BANNED";
    /// The session is an admin's impersonation, which may read as the person but not spend
    /// their money, change their subscription, delete their account or export their data.
    pub const IMPERSONATION_NOT_ALLOWED: &str = "IMPERSONATION_NOT_ALLOWED";
    /// A cursor of `viewer.changes` / `viewerChanged` is too old to replay (or not the
    /// viewer's): read the page again and start from its cursor.
    pub const CURSOR_EXPIRED: &str = "CURSOR_EXPIRED";
    /// No such object among the viewer's own.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// The request's input is invalid.
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// The session is too old for this (deleting the account): sign in again.
    pub const FRESH_SESSION_REQUIRED: &str = "FRESH_SESSION_REQUIRED";
    /// Not enough credits for the operation.
    pub const INSUFFICIENT_CREDITS: &str = "INSUFFICIENT_CREDITS";
    /// The plan's quota for the usage window is used up.
    pub const QUOTA_EXCEEDED: &str = "QUOTA_EXCEEDED";
    /// The object's state does not allow the operation.
    pub const CONFLICT: &str = "CONFLICT";
    /// Too many requests.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// A persisted document id (or APQ hash) this server does not know.
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    /// Introspection (`__schema`, `__type`) in production, where it is off.
    pub const INTROSPECTION_DISABLED: &str = "INTROSPECTION_DISABLED";
    /// A transient failure (database unreachable, pool exhausted, a statement or lock wait past
    /// its timeout): retry after `extensions.retryAfter` seconds.
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    /// Anything else: details are in the server log only.
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
}

/// The message every masked internal error carries.
pub const INTERNAL_MESSAGE: &str = "Internal server error";
/// The message of a transient failure.
pub const UNAVAILABLE_MESSAGE: &str =
    "The service is briefly unavailable (database or photo storage busy or unreachable); try again";
/// Seconds a client should wait before retrying a transient failure.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// An error a resolver returns.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// See [`code::UNAUTHENTICATED`].
    #[error("You must be signed in to do this")]
    Unauthenticated,
    /// See [`code::FORBIDDEN`].
    #[error("{0}")]
    Forbidden(String),
    /// See [`code::ACCOUNT_BANNED`]: until when, if the ban ends.
    #[error("This account is suspended; contact support if you think this is a mistake")]
    AccountBanned(Option<chrono::DateTime<chrono::Utc>>),
    /// See [`code::IMPERSONATION_NOT_ALLOWED`]; the text names what was refused.
    #[error("An impersonated session cannot {0}; only the person can, signed in themselves")]
    ImpersonationNotAllowed(&'static str),
    /// See [`code::CURSOR_EXPIRED`]; the text says why.
    #[error("{0}")]
    CursorExpired(String),
    /// See [`code::NOT_FOUND`]; the text names what was looked for.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// [`code::NOT_FOUND`] for an id given in one field of the input, named in
    /// `extensions.field` (e.g. `uploadIds[1]`).
    #[error("{what} not found ({field})")]
    NotFoundAt {
        /// What was looked for.
        what: &'static str,
        /// The input field that named it.
        field: Cow<'static, str>,
    },
    /// See [`code::BAD_USER_INPUT`].
    #[error("{0}")]
    BadUserInput(String),
    /// [`code::BAD_USER_INPUT`] about one field of the input, named in `extensions.field`
    /// (as the schema spells it), so that a form can show the message next to that field.
    #[error("{message}")]
    InvalidField {
        /// The input field, e.g. `photoCount` or `files[2].contentType`.
        field: Cow<'static, str>,
        /// What is wrong with it.
        message: String,
    },
    /// See [`code::FRESH_SESSION_REQUIRED`].
    #[error("{0}")]
    FreshSessionRequired(String),
    /// See [`code::INSUFFICIENT_CREDITS`].
    #[error("{0}")]
    InsufficientCredits(String),
    /// See [`code::QUOTA_EXCEEDED`].
    #[error("{0}")]
    QuotaExceeded(String),
    /// See [`code::CONFLICT`].
    #[error("{0}")]
    Conflict(String),
    /// See [`code::RATE_LIMITED`].
    #[error("{0}")]
    RateLimited(String),
    /// A service we depend on (Stripe) failed; the message says so without details, and the
    /// code is INTERNAL_SERVER_ERROR. Details are logged where the error is made.
    #[error("{0}")]
    Upstream(String),
    /// See [`code::SERVICE_UNAVAILABLE`]; the text is for the log.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// [`code::SERVICE_UNAVAILABLE`] for a feature this server runs without (photo storage
    /// unconfigured): the text says so, and there is no `retryAfter`.
    #[error("{0}")]
    Disabled(String),
    /// A database error nobody expected.
    #[error("database error: {0}")]
    Database(diesel::result::Error),
    /// Anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// The `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => code::UNAUTHENTICATED,
            AppError::Forbidden(_) => code::FORBIDDEN,
            AppError::AccountBanned(_) => code::ACCOUNT_BANNED,
            AppError::ImpersonationNotAllowed(_) => code::IMPERSONATION_NOT_ALLOWED,
            AppError::CursorExpired(_) => code::CURSOR_EXPIRED,
            AppError::NotFound(_) | AppError::NotFoundAt { .. } => code::NOT_FOUND,
            AppError::BadUserInput(_) | AppError::InvalidField { .. } => code::BAD_USER_INPUT,
            AppError::FreshSessionRequired(_) => code::FRESH_SESSION_REQUIRED,
            AppError::InsufficientCredits(_) => code::INSUFFICIENT_CREDITS,
            AppError::QuotaExceeded(_) => code::QUOTA_EXCEEDED,
            AppError::Conflict(_) => code::CONFLICT,
            AppError::RateLimited(_) => code::RATE_LIMITED,
            AppError::Unavailable(_) | AppError::Disabled(_) => code::SERVICE_UNAVAILABLE,
            AppError::Upstream(_) | AppError::Database(_) | AppError::Internal(_) => {
                code::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Shorthand for [`AppError::BadUserInput`].
    pub fn bad_input(message: impl Into<String>) -> Self {
        AppError::BadUserInput(message.into())
    }

    /// Shorthand for [`AppError::InvalidField`].
    pub fn invalid_field(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        AppError::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Whether a database error is transient: the connection was lost or could not be used, or
/// the statement was cancelled (by `statement_timeout`, `lock_timeout` or an operator) or lost
/// a serialization race. diesel-async reports the cancellations as `Unknown` without their
/// SQLSTATE (57014), so they are told by PostgreSQL's message, which starts "canceling
/// statement due to" (the server's `lc_messages` must be English, its default).
pub fn is_transient(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure,
            _,
        )
        | Error::BrokenTransactionManager => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            message.starts_with("canceling statement due to")
                || message.starts_with("terminating connection")
        }
        _ => false,
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        if is_transient(&error) {
            crate::metrics::db_error("transient");
            AppError::Unavailable(error.to_string())
        } else {
            AppError::Database(error)
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AppError {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        use diesel_async::pooled_connection::deadpool::PoolError;
        match &error {
            PoolError::Timeout(_) => crate::metrics::db_error("pool_timeout"),
            _ => crate::metrics::db_error("connection"),
        }
        // No connection in time, or none could be opened: both pass.
        AppError::Unavailable(format!("database pool: {error}"))
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        let code = error.code();
        let coded = |message: String| {
            async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
        };
        match &error {
            AppError::InvalidField { field, .. } | AppError::NotFoundAt { field, .. } => {
                let field = field.to_string();
                async_graphql::Error::new(error.to_string()).extend_with(|_, e| {
                    e.set("code", code);
                    e.set("field", field);
                })
            }
            AppError::Upstream(message) => coded(message.clone()),
            AppError::AccountBanned(Some(until)) => {
                let until = until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
                async_graphql::Error::new(error.to_string()).extend_with(|_, e| {
                    e.set("code", code);
                    e.set("bannedUntil", until);
                })
            }
            AppError::Unavailable(details) => {
                tracing::warn!(%details, "transient failure in a resolver");
                async_graphql::Error::new(UNAVAILABLE_MESSAGE).extend_with(|_, e| {
                    e.set("code", code);
                    e.set("retryAfter", RETRY_AFTER_SECONDS);
                })
            }
            AppError::Database(_) | AppError::Internal(_) => {
                if let AppError::Database(_) = &error {
                    crate::metrics::db_error("query");
                }
                tracing::error!(error = %error, "internal error in a resolver");
                coded(INTERNAL_MESSAGE.to_owned())
            }
            _ => coded(error.to_string()),
        }
    }
}

/// What resolvers return.
pub type AppResult<T> = Result<T, AppError>;

/// An error on a start-up path (CLI, migrations, dev cluster), whose text is shown as is.
#[derive(Debug)]
pub struct StartupError(pub String);

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

impl From<diesel::result::Error> for StartupError {
    fn from(error: diesel::result::Error) -> Self {
        StartupError(format!("the database refused: {error}"))
    }
}

/// Result of a start-up path.
pub type StartupResult<T> = Result<T, StartupError>;
