//! The administration: `/admin/graphql`, a schema of its own (`admin.graphql`) for the people
//! who run the app — support and admins, by their Better Auth roles ([`staff`]). It runs
//! through the same request pipeline as the viewer's schema (documents, cost, rate limits,
//! error codes); the pipeline lets only staff in (401 without a credential, 403 without a
//! role) and gives the resolvers the [`staff::Staff`] acting. Every mutation writes one row of
//! the audit trail in its own transaction ([`crate::db::admin::audit`]).

pub(crate) mod account;
pub mod billing;
pub mod jobs;
pub mod mutation;
pub mod query;
pub mod roles;
pub(crate) mod staff;
pub(crate) mod types;

use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

/// Everything staff may read.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct Query(query::PeopleQuery, jobs::JobQuery);

/// Everything staff may do.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct Mutation(
    mutation::PeopleMutation,
    jobs::JobMutation,
    billing::PlanMutation,
);

/// The administration's schema.
pub type AdminSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema with nothing attached (for the SDL and tests).
pub fn schema() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
}

/// The served administration schemas (with the Stripe client, for plan changes): fully
/// validating and revalidating, introspection only in development (as the viewer's).
pub fn served(
    config: &crate::config::Config,
    stripe: &crate::stripe::StripeClient,
) -> crate::graphql::Schemas<AdminSchema> {
    crate::graphql::Schemas::build(|mode| {
        let builder = schema()
            .data(stripe.clone())
            .data(config.stripe.clone())
            .validation_mode(mode);
        crate::graphql::finish(builder, config.is_development())
    })
}

/// The SDL that `admin.graphql` holds.
pub fn sdl() -> String {
    schema().finish().sdl()
}
