//! What a resolver reads from its request's context, typed: the request's connection, the
//! viewer (or the photo worker), and the settings and clients the server attached to the
//! schema. A missing piece is an internal error, never a panic.

use async_graphql::Context;
use tokio::sync::RwLockWriteGuard;

use crate::auth::request::RequestAuth;
use crate::auth::service::ServiceCredential;
use crate::config::jobs::Jobs;
use crate::config::stripe::Stripe as StripeConfig;
use crate::db::pool::DbConn;
use crate::db::request::{DbGuard, RequestDb};
use crate::db::viewer::SessionUser;
use crate::error::{AppError, AppResult};
use crate::storage::Photos;
use crate::stripe::client::StripeClient;

/// Data the server attached to the schema (or the request), or an internal error naming it.
pub(crate) fn data<'a, T: Send + Sync + 'static>(
    ctx: &Context<'a>,
    what: &str,
) -> AppResult<&'a T> {
    ctx.data::<T>()
        .map_err(|_| AppError::Internal(format!("the schema has no {what} attached")))
}

/// The earliest instant at which an answer being built could change without a write (a
/// presigned URL minted for it nearing expiry): the response cache does not serve it past
/// that. Attached to a request only when its answer may be cached.
#[derive(Default)]
pub(crate) struct AnswerChanges(std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>);

impl AnswerChanges {
    /// Notes that the answer changes at `at` (the earliest such instant is kept).
    pub(crate) fn at(&self, at: chrono::DateTime<chrono::Utc>) {
        let mut earliest = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }

    /// The earliest instant noted, if any.
    pub(crate) fn earliest(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A URL valid until `expires_at` went into the answer: a cached copy is served only for the
/// first half of its life, so a client always gets at least half of it.
pub(crate) fn url_minted(ctx: &Context<'_>, expires_at: chrono::DateTime<chrono::Utc>) {
    if let Some(changes) = ctx.data_opt::<std::sync::Arc<AnswerChanges>>() {
        let now = chrono::Utc::now();
        changes.at(now + (expires_at - now) / 2);
    }
}

/// How jobs are priced and leased.
pub(crate) fn jobs<'a>(ctx: &Context<'a>) -> AppResult<&'a Jobs> {
    data(ctx, "job settings")
}

/// Photo storage: the store (when configured) and its limits.
pub(crate) fn photos<'a>(ctx: &Context<'a>) -> AppResult<&'a Photos> {
    data(ctx, "photo storage")
}

/// The Stripe client and its settings.
pub(crate) fn stripe<'a>(ctx: &Context<'a>) -> AppResult<(&'a StripeClient, &'a StripeConfig)> {
    Ok((data(ctx, "Stripe client")?, data(ctx, "Stripe settings")?))
}

/// The request's connection (see [`RequestDb`]).
fn request_db<'a>(ctx: &Context<'a>) -> AppResult<&'a RequestDb> {
    data(ctx, "database handle")
}

/// The request's connection, shared with the resolvers running beside this one (their
/// queries are pipelined on it). Use it as `&mut &**conn`.
pub(crate) async fn read<'a>(ctx: &Context<'a>) -> AppResult<DbGuard<'a>> {
    Ok(request_db(ctx)?.read().await?)
}

/// The request's connection alone, for a mutation's transaction.
pub(crate) async fn conn<'a>(ctx: &Context<'a>) -> AppResult<RwLockWriteGuard<'a, DbConn>> {
    Ok(request_db(ctx)?.write().await?)
}

/// The signed-in user: `UNAUTHENTICATED` without a session, `FORBIDDEN` for a service token
/// (which is never a viewer).
pub(crate) async fn viewer(ctx: &Context<'_>) -> AppResult<SessionUser> {
    if ctx
        .data_opt::<RequestAuth>()
        .is_some_and(|a| matches!(a.service(), ServiceCredential::Valid(_)))
    {
        return Err(AppError::Forbidden(
            "a service token cannot act as a viewer".into(),
        ));
    }
    current_user(ctx).await?.ok_or(AppError::Unauthenticated)
}

/// The signed-in user acting in person: as [`viewer`], and `IMPERSONATION_NOT_ALLOWED` for an
/// admin's impersonation of them (Better Auth's `session.impersonatedBy`), which may read but
/// not `what` (spend, change the subscription, delete the account). The one check; the data
/// export makes it through [`crate::db::viewer::SessionUser::in_person`] too.
pub(crate) async fn viewer_in_person(
    ctx: &Context<'_>,
    what: &'static str,
) -> AppResult<SessionUser> {
    let user = viewer(ctx).await?;
    user.in_person(what)?;
    Ok(user)
}

/// The viewer's user id (see [`viewer`]).
pub(crate) async fn viewer_id(ctx: &Context<'_>) -> AppResult<String> {
    viewer(ctx).await.map(|user| user.id)
}

/// The service token's subject: `UNAUTHENTICATED` without a valid service token, `FORBIDDEN`
/// when the request signs a viewer in instead (credentials that sign nobody in, such as a
/// forged JWT, are `UNAUTHENTICATED`).
pub(crate) async fn require_service(ctx: &Context<'_>) -> AppResult<String> {
    let Some(auth) = ctx.data_opt::<RequestAuth>() else {
        return Err(AppError::Unauthenticated);
    };
    match auth.service() {
        ServiceCredential::Valid(subject) => Ok(subject.clone()),
        ServiceCredential::Absent if current_user(ctx).await?.is_some() => {
            Err(AppError::Forbidden(
                "worker operations need a service token; viewer credentials cannot call them"
                    .into(),
            ))
        }
        _ => Err(AppError::Unauthenticated),
    }
}

/// The signed-in user, if any (looked up once per request).
pub(crate) async fn current_user(ctx: &Context<'_>) -> AppResult<Option<SessionUser>> {
    let Some(auth) = ctx.data_opt::<RequestAuth>() else {
        return Ok(None);
    };
    let user = auth.user(request_db(ctx)?).await.map_err(|e| match e {
        crate::auth::request::LookupError::Pool(e) => AppError::from(e),
        crate::auth::request::LookupError::Query(e) => AppError::from(e),
        crate::auth::request::LookupError::Banned(ban) => AppError::AccountBanned(ban.expires),
    })?;
    Ok(user.cloned())
}
