//! `Query`: the root of every read. `viewer` is the only door to user-owned data.

use async_graphql::{Context, ID, Object};

use super::context::{current_user, read, viewer_id};
use super::node::{self, Node};
use super::purchases::CreditPack;
use super::viewer::Viewer;
use crate::error::AppError;

/// The root of every read.
pub struct Query;

/// The root of every read.
#[Object]
impl Query {
    /// The signed-in person, or null when the request carries no valid Better Auth session.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Viewer>> {
        Ok(current_user(ctx).await?.map(Viewer::new))
    }

    /// The credit packs on sale, smallest first (buy one with `purchaseCredits`).
    async fn credit_packs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CreditPack>> {
        let conn = read(ctx).await?;
        Ok(crate::db::purchases::CreditPack::for_sale(&mut &**conn)
            .await
            .map_err(AppError::from)?
            .into_iter()
            .map(CreditPack)
            .collect())
    }

    /// One of the viewer's own objects by its global id; null for unknown ids and for other
    /// people's objects alike. Requires a session (`UNAUTHENTICATED` otherwise).
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Node>> {
        let viewer_id = viewer_id(ctx).await?;
        Ok(node::load(ctx, &viewer_id, &id).await?)
    }
}
