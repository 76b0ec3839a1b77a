//! Stripe's tables, and the writes Stripe's webhooks and answers make. None of these queries
//! can be scoped to a viewer: Stripe names a customer, a Checkout Session or a subscription,
//! and these functions map those to bff's users (or write by them). Everything a viewer reads
//! of billing goes through the owner-scoped queries of `subscriptions`, `purchases` and
//! `viewer`. (A purchase's writes are in [`crate::db::purchases`], which owns the table.)

pub(crate) mod checkouts;
pub(crate) mod customers;
pub(crate) mod disputes;
pub(crate) mod events;
pub(crate) mod payments;
pub(crate) mod refunds;
pub(crate) mod subscriptions;
pub(crate) mod syncs;
