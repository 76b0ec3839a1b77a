//! Reading a Stripe subscription object into the [`Snapshot`] bff stores
//! ([`crate::db::stripe::apply_snapshot`] writes it).

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use crate::db::stripe::Snapshot;
use crate::db::subscriptions::SubscriptionStatus;

/// Seconds since the epoch from a JSON number.
pub fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(value.as_i64()?, 0)
}

impl Snapshot {
    /// Reads a Stripe `subscription` object; `None` when it lacks an id or a known status.
    pub fn from_json(object: &Value) -> Option<Snapshot> {
        let item = &object["items"]["data"][0];
        let status = SubscriptionStatus::parse(&object["status"].as_str()?.to_ascii_uppercase())?;
        let period = |field: &str| timestamp(&object[field]).or_else(|| timestamp(&item[field]));
        Some(Snapshot {
            subscription_id: object["id"].as_str()?.to_owned(),
            customer_id: customer_id(&object["customer"]),
            price_id: item["price"]["id"].as_str().map(str::to_owned),
            status,
            current_period_start: period("current_period_start"),
            current_period_end: period("current_period_end"),
            trial_end: timestamp(&object["trial_end"]),
            cancel_at_period_end: object["cancel_at_period_end"].as_bool().unwrap_or(false),
            canceled_at: timestamp(&object["canceled_at"]),
            user_id: object["metadata"]["user_id"].as_str().map(str::to_owned),
        })
    }
}

/// A customer reference, expanded (`{"id": …}`) or not (`"cus_…"`).
pub fn customer_id(value: &Value) -> Option<String> {
    value
        .as_str()
        .or_else(|| value["id"].as_str())
        .map(str::to_owned)
}
