//! Stripe: the API client for the viewer's billing operations, webhook signature checks, and
//! the effects of Stripe's events. Stripe delivers events at least once and in any order; each
//! event is recorded once, in the same transaction as its effect, and an older snapshot of a
//! subscription never overwrites a newer one.

pub(crate) mod client;
pub(crate) mod events;
pub(crate) mod kind;
pub(crate) mod objects;
pub(crate) mod returns;
pub(crate) mod reversals;
pub mod signature;
pub(crate) mod snapshot;
pub mod sync;

pub use client::{StripeClient, StripeError};
pub use kind::EventKind;
