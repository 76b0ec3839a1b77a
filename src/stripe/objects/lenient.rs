//! Field readers for [`super`]'s structs, as forgiving as indexing a `serde_json::Value`: a
//! field that is missing, `null` or of another type reads as absent (a number where text is
//! expected too), and an object that is not one reads as empty. None of them fails, so a
//! struct made of them deserializes from any JSON object.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads `value` as a `T`: an object field by field, anything else as an empty `T`.
pub(crate) fn read<T: DeserializeOwned + Default>(value: &Value) -> T {
    if value.is_object() {
        T::deserialize(value).unwrap_or_default()
    } else {
        T::default()
    }
}

/// [`read`] of a value owned.
fn read_owned<T: DeserializeOwned + Default>(value: Value) -> T {
    if value.is_object() {
        T::deserialize(value).unwrap_or_default()
    } else {
        T::default()
    }
}

/// Text, else `None`.
pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(text) => Some(text),
        _ => None,
    })
}

/// A whole number that fits an `i64`, else `None`.
pub(super) fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Value::deserialize(d)?.as_i64())
}

/// `true` only for JSON's `true`.
pub(super) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Value::deserialize(d)? == Value::Bool(true))
}

/// An instant in seconds since the epoch, else `None`.
pub(super) fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(Value::deserialize(d)?
        .as_i64()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0)))
}

/// A nested object (see [`read`]).
pub(super) fn object<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(read_owned(Value::deserialize(d)?))
}

/// An array, each item read as [`read`] does; empty for anything else.
pub(super) fn list<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.into_iter().map(read_owned).collect(),
        _ => Vec::new(),
    })
}

/// An array as it is, else `None`.
pub(super) fn values<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Value>>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => Some(items),
        _ => None,
    })
}

/// A reference to another Stripe object, by id (`"cus_…"`) or expanded (`{"id": "cus_…"}`):
/// its id, else `None`.
pub(super) fn reference<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(id) => Some(id),
        Value::Object(mut fields) => match fields.remove("id") {
            Some(Value::String(id)) => Some(id),
            _ => None,
        },
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::read;
    use crate::stripe::events::Event;
    use crate::stripe::objects::{CheckoutSession, Invoice, Subscription};

    /// Odd shapes Stripe never sends but a field reader must survive.
    fn odd_values() -> Vec<Value> {
        vec![
            Value::Null,
            json!(true),
            json!(7),
            json!(-7),
            json!(1.5),
            json!(u64::MAX),
            json!("text"),
            json!([]),
            json!(["cs_1", 2]),
            json!({}),
            json!({ "id": "obj_1" }),
            json!({ "id": 3 }),
        ]
    }

    #[test]
    fn every_field_reads_as_indexing_the_json_did() {
        for value in odd_values() {
            for field in [
                "id",
                "customer",
                "amount_total",
                "metadata",
                "payment_status",
            ] {
                let session = json!({ field: value.clone(), "currency": "eur" });
                let read: CheckoutSession = read(&session);
                assert_eq!(read.id.as_deref(), session["id"].as_str());
                assert_eq!(read.amount_total, session["amount_total"].as_i64());
                assert_eq!(read.currency.as_deref(), Some("eur"));
                assert_eq!(
                    read.metadata.user_id.as_deref(),
                    session["metadata"]["user_id"].as_str()
                );
                let customer = &session["customer"];
                assert_eq!(
                    read.customer.as_deref(),
                    customer.as_str().or_else(|| customer["id"].as_str())
                );
            }
            // A whole object of another shape reads as empty (an array is not read by position).
            let read: CheckoutSession = read(&value);
            assert_eq!(read.id.as_deref(), value["id"].as_str());
            assert_eq!(read.customer, None);
        }
    }

    #[test]
    fn lists_read_their_first_item_as_indexing_did() {
        for first in odd_values() {
            let invoice = json!({ "lines": { "data": [first, { "subscription": "sub_2" }] } });
            let read: Invoice = read(&invoice);
            assert_eq!(
                read.subscription(),
                invoice["lines"]["data"][0]["subscription"].as_str()
            );
        }
        let invoice = json!({
            "parent": { "subscription_details": { "subscription": "sub_1" } },
            "lines": { "data": [{ "subscription": "sub_2", "period": { "start": 10, "end": "x" } }] },
        });
        let read: Invoice = read(&invoice);
        assert_eq!(read.subscription(), Some("sub_1"));
        let period = &read.lines.data[0].period;
        assert_eq!(period.start.map(|t| t.timestamp()), Some(10));
        assert_eq!(period.end, None);
    }

    #[test]
    fn a_subscription_takes_its_period_from_its_item_in_newer_api_versions() {
        let subscription: Subscription = read(&json!({
            "id": "sub_1",
            "status": "past_due",
            "customer": { "id": "cus_1" },
            "items": { "data": [{ "price": { "id": "price_1" }, "current_period_end": 20 }] },
            "current_period_start": 10,
            "cancel_at_period_end": "yes",
        }));
        let snapshot = subscription.snapshot().unwrap();
        assert_eq!(snapshot.customer_id.as_deref(), Some("cus_1"));
        assert_eq!(snapshot.price_id.as_deref(), Some("price_1"));
        assert_eq!(snapshot.current_period_start.unwrap().timestamp(), 10);
        assert_eq!(snapshot.current_period_end.unwrap().timestamp(), 20);
        assert!(!snapshot.cancel_at_period_end);
        let unknown: Subscription = read(&json!({ "id": "sub_1", "status": "paused_forever" }));
        assert!(unknown.snapshot().is_none());
    }

    #[test]
    fn an_envelope_needs_an_id_and_a_type() {
        let event = Event::from_json(&json!({
            "id": "evt_1", "type": "customer.created", "livemode": "true", "data": [1],
        }))
        .unwrap();
        assert_eq!(event.kind, "customer.created");
        assert_eq!(event.handled(), None);
        assert_eq!(event.label(), "other");
        assert!(!event.livemode);
        assert_eq!(event.object, Value::Null);
        assert!(Event::from_json(&json!({ "id": "", "type": "invoice.paid" })).is_none());
        assert!(Event::from_json(&json!({ "id": "evt_1", "type": 3 })).is_none());
        assert!(Event::from_json(&json!(["evt_1", "invoice.paid"])).is_none());
        let paid =
            Event::from_json(&json!({ "id": "evt_1", "type": "invoice.paid", "created": 5 }));
        assert_eq!(paid.unwrap().created.timestamp(), 5);
    }
}
