//! One error type for everything a resolver can fail with, mapped to a stable
//! `extensions.code`. Internal errors are logged here and reach the client only as
//! "Internal server error" (the HTTP layer adds the request id).

use async_graphql::ErrorExtensions;

/// The codes clients may rely on (DESIGN.md § Errors).
pub mod code {
    /// No valid session (or service token) where one is needed.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Authenticated, but this credential may not do this.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// No such object among the viewer's own.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// The request's input is invalid.
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// Not enough credits for the operation.
    pub const INSUFFICIENT_CREDITS: &str = "INSUFFICIENT_CREDITS";
    /// The plan's quota for the usage window is used up.
    pub const QUOTA_EXCEEDED: &str = "QUOTA_EXCEEDED";
    /// The object's state does not allow the operation.
    pub const CONFLICT: &str = "CONFLICT";
    /// Too many requests.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// Anything else: details are in the server log only.
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
}

/// The message every masked internal error carries.
pub const INTERNAL_MESSAGE: &str = "Internal server error";

/// An error a resolver returns.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// See [`code::UNAUTHENTICATED`].
    #[error("You must be signed in to do this")]
    Unauthenticated,
    /// See [`code::FORBIDDEN`].
    #[error("{0}")]
    Forbidden(String),
    /// See [`code::NOT_FOUND`]; the text names what was looked for.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// See [`code::BAD_USER_INPUT`].
    #[error("{0}")]
    BadUserInput(String),
    /// [`code::BAD_USER_INPUT`] about one field of the input, named in `extensions.field`
    /// (as the schema spells it), so that a form can show the message next to that field.
    #[error("{message}")]
    InvalidField {
        /// The input field, e.g. `photoCount`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
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
    /// A database error nobody expected.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// No pooled connection in time, or the database is unreachable.
    #[error("database pool error: {0}")]
    Pool(String),
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
            AppError::NotFound(_) => code::NOT_FOUND,
            AppError::BadUserInput(_) | AppError::InvalidField { .. } => code::BAD_USER_INPUT,
            AppError::InsufficientCredits(_) => code::INSUFFICIENT_CREDITS,
            AppError::QuotaExceeded(_) => code::QUOTA_EXCEEDED,
            AppError::Conflict(_) => code::CONFLICT,
            AppError::RateLimited(_) => code::RATE_LIMITED,
            AppError::Upstream(_) => code::INTERNAL_SERVER_ERROR,
            AppError::Database(_) | AppError::Pool(_) | AppError::Internal(_) => {
                code::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Shorthand for [`AppError::BadUserInput`].
    pub fn bad_input(message: impl Into<String>) -> Self {
        AppError::BadUserInput(message.into())
    }

    /// Shorthand for [`AppError::InvalidField`].
    pub fn invalid_field(field: &'static str, message: impl Into<String>) -> Self {
        AppError::InvalidField {
            field,
            message: message.into(),
        }
    }
}

impl From<crate::db::PoolError> for AppError {
    fn from(error: crate::db::PoolError) -> Self {
        if matches!(error, crate::db::PoolError::Timeout(_)) {
            crate::metrics::db_error("pool_timeout");
        }
        AppError::Pool(error.to_string())
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        let code = error.code();
        if let AppError::InvalidField { field, message } = &error {
            let field = *field;
            async_graphql::Error::new(message.clone()).extend_with(|_, e| {
                e.set("code", code);
                e.set("field", field);
            })
        } else if let AppError::Upstream(message) = &error {
            async_graphql::Error::new(message.clone()).extend_with(|_, e| e.set("code", code))
        } else if code == code::INTERNAL_SERVER_ERROR {
            if let AppError::Database(_) = &error {
                crate::metrics::db_error("query");
            }
            tracing::error!(error = %error, "internal error in a resolver");
            async_graphql::Error::new(INTERNAL_MESSAGE).extend_with(|_, e| e.set("code", code))
        } else {
            async_graphql::Error::new(error.to_string()).extend_with(|_, e| e.set("code", code))
        }
    }
}

/// What resolvers return.
pub type AppResult<T> = Result<T, AppError>;
