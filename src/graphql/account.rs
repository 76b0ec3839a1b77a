//! `deleteAccount`: the signed-in person deletes their account, with a fresh session and their
//! email typed again. What remains afterwards is only the money trail, under a tombstone id;
//! the clean-up outside PostgreSQL is queued in the same transaction.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;

use super::context::{conn, viewer_in_person};
use crate::config::auth::FreshSession;
use crate::db::account::{self, DeleteError};
use crate::error::AppError;

/// What `deleteAccount` needs.
#[derive(InputObject)]
pub(crate) struct DeleteAccountInput {
    /// The account's email, typed again by the person (case and surrounding spaces ignored).
    pub confirm_email: String,
}

/// The account is gone.
#[derive(SimpleObject)]
pub(crate) struct DeleteAccountPayload {
    /// When it was deleted (by the database's clock).
    pub deleted_at: DateTime<Utc>,
}

/// Leaving.
#[derive(Default)]
pub(crate) struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Deletes the signed-in person's account: their photo jobs, photos, usage, subscription and
    /// sessions, and Better Auth's rows of them (as Better Auth's deleteUser does). Purchases and
    /// the ledger rows of payments are kept for accounting under a random id, without any
    /// personal data. The Stripe subscription is canceled, the Stripe customer and the stored
    /// photos deleted, shortly after (retried until they succeed). Needs a session created
    /// within BFF_FRESH_SESSION_SECONDS (FRESH_SESSION_REQUIRED otherwise: ask the person to
    /// sign in again; a JWT names no session and is never fresh) and `confirmEmail` equal to the
    /// account's email (BAD_USER_INPUT otherwise). Live connections of the person are closed.
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's email, typed again.")] input: DeleteAccountInput,
    ) -> async_graphql::Result<DeleteAccountPayload> {
        let user = viewer_in_person(ctx, "delete the account").await?;
        let fresh = ctx
            .data::<FreshSession>()
            .map_err(|_| AppError::Internal("no freshness window attached".into()))?
            .0;
        let mut conn = conn(ctx).await?;
        let deleted = conn
            .transaction(async |conn| {
                account::delete(
                    conn,
                    &user.id,
                    &user.session_id,
                    &input.confirm_email,
                    fresh,
                )
                .await
            })
            .await;
        let deleted_at = deleted.map_err(|error| match error {
            DeleteError::NotFresh => AppError::FreshSessionRequired(
                "Deleting the account needs a recent sign-in: sign in again, then retry".into(),
            ),
            DeleteError::WrongEmail => AppError::InvalidField {
                field: "confirmEmail".into(),
                message: "confirmEmail is not this account's email".into(),
            },
            DeleteError::Gone => AppError::Unauthenticated,
            DeleteError::Database(error) => AppError::from(error),
        })?;
        // No personal data in the log: the deletion happened, and when.
        tracing::info!(%deleted_at, "an account was deleted");
        crate::metrics::account_deleted();
        Ok(DeleteAccountPayload { deleted_at })
    }
}
