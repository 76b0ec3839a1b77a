//! The GraphQL schema: `Query.viewer` is the only door to user-owned data, and every field
//! beneath it queries with the viewer's id, so ownership cannot be forgotten in one place.

pub mod admission;
pub mod billing;
pub mod billing_mutations;
pub mod connection;
pub mod credits;
pub mod live;
pub mod mutations;
pub mod node;
pub mod photo_jobs;
pub mod purchases;
pub mod scalars;
pub mod viewer;
pub mod worker;

use async_graphql::{Context, ID, MergedObject, Object, Schema, SchemaBuilder};

use crate::auth::service::ServiceCredential;
use billing_mutations::BillingMutation;
use mutations::PhotoJobMutation;
use worker::WorkerMutation;

use crate::auth::RequestAuth;
use tokio::sync::RwLockWriteGuard;

use crate::db::DbConn;
use crate::db::request::RequestDb;
use crate::error::{AppError, AppResult};

/// The schema type served by bff.
pub type AppSchema = Schema<Query, Mutation, live::Subscription>;

/// Every change: the viewer's own, and the photo worker's (service token only).
#[derive(MergedObject, Default)]
pub struct Mutation(PhotoJobMutation, BillingMutation, WorkerMutation);

/// Deepest selection a document may have (GraphiQL's introspection query needs 13). What a
/// document may cost is measured before this runs: see [`admission`].
pub const MAX_DEPTH: usize = 16;

/// Settings the resolvers need, attached to the schema once.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Free photos every user gets before credits are spent.
    pub free_photo_allowance: i32,
    /// How long a worker's claim lasts without a heartbeat.
    pub worker_lease: std::time::Duration,
    /// Claims a job gets before an expired lease fails it.
    pub worker_max_attempts: i32,
}

/// The schema with no data attached: the server adds the pool and settings, and `bff schema`
/// prints it bare.
pub fn schema() -> SchemaBuilder<Query, Mutation, live::Subscription> {
    Schema::build(Query, Mutation::default(), live::Subscription).limit_depth(MAX_DEPTH)
}

/// The SDL that `schema.graphql` holds.
pub fn sdl() -> String {
    schema().finish().sdl()
}

/// The request's connection (see [`RequestDb`]).
fn request_db<'a>(ctx: &Context<'a>) -> AppResult<&'a RequestDb> {
    ctx.data::<RequestDb>()
        .map_err(|_| AppError::Internal("the request has no database handle".into()))
}

/// The request's connection, shared with the resolvers running beside this one (their
/// queries are pipelined on it). Use it as `&mut &**conn`.
pub(crate) async fn read<'a>(ctx: &Context<'a>) -> AppResult<crate::db::request::DbGuard<'a>> {
    Ok(request_db(ctx)?.read().await?)
}

/// The request's connection alone, for a mutation's transaction.
pub(crate) async fn conn<'a>(ctx: &Context<'a>) -> AppResult<RwLockWriteGuard<'a, DbConn>> {
    Ok(request_db(ctx)?.write().await?)
}

/// The signed-in user: `UNAUTHENTICATED` without a session, `FORBIDDEN` for a service token
/// (which is never a viewer).
pub(crate) async fn viewer(ctx: &Context<'_>) -> AppResult<crate::auth::SessionUser> {
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

async fn current_user(ctx: &Context<'_>) -> AppResult<Option<crate::auth::SessionUser>> {
    let Some(auth) = ctx.data_opt::<RequestAuth>() else {
        return Ok(None);
    };
    let user = auth.user(request_db(ctx)?).await.map_err(|e| match e {
        crate::auth::LookupError::Pool(e) => AppError::from(e),
        crate::auth::LookupError::Query(e) => AppError::from(e),
    })?;
    Ok(user.cloned())
}

/// The root of every read.
pub struct Query;

/// The root of every read.
#[Object]
impl Query {
    /// The signed-in person, or null when the request carries no valid Better Auth session.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<viewer::Viewer>> {
        Ok(current_user(ctx).await?.map(viewer::Viewer::new))
    }

    /// The credit packs on sale, smallest first (buy one with `purchaseCredits`).
    async fn credit_packs(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<purchases::CreditPack>> {
        let conn = read(ctx).await?;
        Ok(crate::db::purchases::CreditPack::for_sale(&mut &**conn)
            .await
            .map_err(AppError::from)?
            .into_iter()
            .map(purchases::CreditPack)
            .collect())
    }

    /// One of the viewer's own objects by its global id; null for unknown ids and for other
    /// people's objects alike. Requires a session (`UNAUTHENTICATED` otherwise).
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's global id.")] id: ID,
    ) -> async_graphql::Result<Option<node::Node>> {
        let viewer_id = viewer_id(ctx).await?;
        Ok(node::load(ctx, &viewer_id, &id).await?)
    }
}

pub(crate) use crate::db::states::db_enum;
