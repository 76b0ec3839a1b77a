//! The GraphQL schema: `Query.viewer` is the only door to user-owned data, and every field
//! beneath it queries with the viewer's id, so ownership cannot be forgotten in one place.
//! Mutations take the viewer from the same place ([`context`]); `Query` and `Mutation` are
//! merged per domain. [`schema`] returns the schema with no data attached (`bff schema` prints
//! it); [`served`] attaches the settings and clients the server's resolvers read.

pub(crate) mod account;
pub(crate) mod billing;
pub(crate) mod billing_mutations;
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
pub struct Schemas {
    /// Fully validating, for a document's first run.
    pub strict: AppSchema,
    /// `ValidationMode::Fast`, for documents that passed full validation before.
    pub revalidating: AppSchema,
}

/// The served schema of `config`: introspection and suggestions only in development.
pub fn served(
    config: &crate::config::Config,
    photos: &crate::storage::Photos,
    stripe: &crate::stripe::StripeClient,
) -> Schemas {
    let introspection = config.is_development();
    let schema = |mode| {
        let builder = schema()
            .data(config.jobs)
            .data(config.auth.fresh_session)
            .data(photos.clone())
            .data(stripe.clone())
            .data(config.stripe.clone())
            .validation_mode(mode);
        if introspection {
            builder.finish()
        } else {
            // Suggestions ("Did you mean …") would describe the schema introspection hides.
            builder
                .disable_introspection()
                .disable_suggestions()
                .finish()
        }
    };
    Schemas {
        strict: schema(async_graphql::ValidationMode::Strict),
        revalidating: schema(async_graphql::ValidationMode::Fast),
    }
}

/// The SDL that `schema.graphql` holds.
pub fn sdl() -> String {
    schema().finish().sdl()
}
