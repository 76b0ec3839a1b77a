//! The GraphQL schema: `Query.viewer` is the only door to user-owned data, and every field
//! beneath it queries with the viewer's id, so ownership cannot be forgotten in one place.
//! Mutations take the viewer from the same place ([`context`]); `Query` and `Mutation` are
//! merged per domain. [`schema`] returns the schema with no data attached (`bff schema` prints
//! it); [`served`] attaches the settings and clients the server's resolvers read.

pub(crate) mod account;
pub(crate) mod billing;
pub(crate) mod billing_mutations;
pub(crate) mod changes;
pub use changes::cursor as changes_cursor;
pub(crate) mod connection;
pub(crate) mod context;
pub(crate) mod credits;
pub mod ids;
pub(crate) mod live;
pub(crate) mod mutations;
pub(crate) mod node;
pub(crate) mod notifications;
pub(crate) mod photo_jobs;
pub(crate) mod purchases;
pub(crate) mod query;
pub mod scalars;
pub mod uploads;
pub(crate) mod viewer;
pub(crate) mod worker;

use async_graphql::{MergedObject, Schema, SchemaBuilder};

/// The schema type served by bff.
pub type AppSchema = Schema<query::Query, Mutation, live::Subscription>;

/// Every change: the viewer's own, and the photo worker's (service token only).
#[derive(MergedObject, Default)]
pub struct Mutation(
    mutations::PhotoJobMutation,
    uploads::UploadMutation,
    billing_mutations::BillingMutation,
    worker::WorkerMutation,
    account::AccountMutation,
    notifications::NotificationMutation,
);

/// Deepest selection a document may have (GraphiQL's introspection query needs 13). What a
/// document may cost is measured before this runs (`crate::pipeline::cost`).
pub const MAX_DEPTH: usize = 16;

/// The schema with no data attached.
pub fn schema() -> SchemaBuilder<query::Query, Mutation, live::Subscription> {
    Schema::build(query::Query, Mutation::default(), live::Subscription).limit_depth(MAX_DEPTH)
}

/// The served schema, built once with what the resolvers read (settings, the photo store, the
/// Stripe client), in both validation modes.
pub struct Schemas<S = AppSchema> {
    /// Fully validating, for a document's first run.
    pub strict: S,
    /// `ValidationMode::Fast`, for documents that passed full validation before.
    pub revalidating: S,
}

impl<S> Schemas<S> {
    /// Both modes of a schema `build` makes for a validation mode.
    pub(crate) fn build(build: impl Fn(async_graphql::ValidationMode) -> S) -> Self {
        Schemas {
            strict: build(async_graphql::ValidationMode::Strict),
            revalidating: build(async_graphql::ValidationMode::Fast),
        }
    }
}

/// `builder` finished for serving: introspection and suggestions ("Did you mean …", which
/// would describe the schema introspection hides) only when `introspection`.
pub(crate) fn finish<Q, M, S>(
    builder: SchemaBuilder<Q, M, S>,
    introspection: bool,
) -> Schema<Q, M, S>
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    if introspection {
        builder.finish()
    } else {
        builder
            .disable_introspection()
            .disable_suggestions()
            .finish()
    }
}

/// The served schema of `config`: introspection and suggestions only in development.
pub fn served(
    config: &crate::config::Config,
    photos: &crate::storage::Photos,
    stripe: &crate::stripe::StripeClient,
) -> Schemas {
    Schemas::build(|mode| {
        let builder = schema()
            .data(config.jobs)
            .data(config.auth.fresh_session)
            .data(photos.clone())
            .data(stripe.clone())
            .data(config.stripe.clone())
            .validation_mode(mode);
        finish(builder, config.is_development())
    })
}

/// The SDL that `schema.graphql` holds.
pub fn sdl() -> String {
    schema().finish().sdl()
}
