//! Stripe's tables, and the writes Stripe's webhooks and answers make. None of these queries
//! can be scoped to a viewer: Stripe names a customer, a Checkout Session or a subscription,
//! and these functions map those to bff's users (or write by them). Everything a viewer reads
//! of billing goes through the owner-scoped queries of `subscriptions`, `purchases` and
//! `viewer`. (A purchase's writes are in [`crate::db::purchases`], which owns the table.)

pub mod checkouts;
pub mod customers;
pub mod disputes;
pub mod events;
pub mod payments;
pub mod refunds;
pub mod subscriptions;
pub mod syncs;
