//! The GraphQL schema: `Query.viewer` is the only door to user-owned data, and every field
//! beneath it queries with the viewer's id, so ownership cannot be forgotten in one place.

pub mod billing;
pub mod connection;
pub mod credits;
pub mod mutations;
pub mod node;
pub mod photo_jobs;
pub mod scalars;
pub mod viewer;

use async_graphql::{Context, EmptySubscription, ID, Object, Schema, SchemaBuilder};

use mutations::PhotoJobMutation;

use crate::auth::RequestAuth;
use crate::db::{DbConn, DbPool};
use crate::error::{AppError, AppResult};

/// The schema type served by bff.
pub type AppSchema = Schema<Query, PhotoJobMutation, EmptySubscription>;

/// Deepest selection a document may have (GraphiQL's introspection query needs 13).
pub const MAX_DEPTH: usize = 16;
/// Most fields a document may select, counting each connection page's fields once.
pub const MAX_COMPLEXITY: usize = 1000;

/// Settings the resolvers need, attached to the schema once.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Free photos every user gets before credits are spent.
    pub free_photo_allowance: i32,
}

/// The schema with no data attached: the server adds the pool and settings, and `bff schema`
/// prints it bare.
pub fn schema() -> SchemaBuilder<Query, PhotoJobMutation, EmptySubscription> {
    Schema::build(Query, PhotoJobMutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

/// The SDL that `schema.graphql` holds.
pub fn sdl() -> String {
    schema().finish().sdl()
}

/// A pooled connection for a resolver.
pub(crate) async fn conn(ctx: &Context<'_>) -> AppResult<DbConn> {
    Ok(ctx.data_unchecked::<DbPool>().get().await?)
}

/// The viewer's user id, or `UNAUTHENTICATED`.
pub(crate) async fn viewer_id(ctx: &Context<'_>) -> AppResult<String> {
    current_user(ctx)
        .await?
        .map(|user| user.id)
        .ok_or(AppError::Unauthenticated)
}

async fn current_user(ctx: &Context<'_>) -> AppResult<Option<crate::auth::SessionUser>> {
    let Some(auth) = ctx.data_opt::<RequestAuth>() else {
        return Ok(None);
    };
    let pool = ctx.data_unchecked::<DbPool>();
    let user = auth.user(pool).await.map_err(|e| match e {
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

/// Declares a GraphQL enum stored in the database as its upper-case name.
macro_rules! db_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $db:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// The value stored in the database.
            pub fn as_db(self) -> &'static str {
                match self { $(Self::$variant => $db),+ }
            }

            /// Reads a stored value; anything unknown is an internal error.
            pub fn from_db(value: &str) -> $crate::error::AppResult<Self> {
                match value {
                    $($db => Ok(Self::$variant),)+
                    other => Err($crate::error::AppError::Internal(format!(
                        concat!("unknown ", stringify!($name), " {:?} in the database"), other))),
                }
            }
        }
    };
}
pub(crate) use db_enum;
