//! The Stripe objects bff reads — an event's envelope, its `data.object` of each kind, a page
//! of the event list — as typed structs. Each field is read leniently (see `objects/lenient.rs`): what is
//! missing or of another type is `None` (or empty), never a failure, so an object lacking what
//! bff needs gets the same outcome as before the structs ("malformed", "ignored", …).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

mod lenient;

pub(crate) use lenient::read;
use lenient::{flag, int, list, object, reference, text, time, values};

/// An event as Stripe sends it (the envelope; `data.object` is read by its kind).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Envelope {
    /// `evt_…`.
    #[serde(deserialize_with = "text")]
    pub id: Option<String>,
    /// The event's type, e.g. `checkout.session.completed`.
    #[serde(rename = "type", deserialize_with = "text")]
    pub kind: Option<String>,
    /// When Stripe created it.
    #[serde(deserialize_with = "time")]
    pub created: Option<DateTime<Utc>>,
    /// Live or test mode.
    #[serde(deserialize_with = "flag")]
    pub livemode: bool,
    /// Its `data`.
    #[serde(deserialize_with = "object")]
    pub data: EventData,
}

/// An event's `data`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EventData {
    /// The object the event is about, read by the event's kind (`null` when missing).
    pub object: Value,
}

/// A page of `GET /v1/events`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EventPage {
    /// The events, newest first; `None` when the answer is not a list.
    #[serde(deserialize_with = "values")]
    pub data: Option<Vec<Value>>,
    /// Whether more pages follow.
    #[serde(deserialize_with = "flag")]
    pub has_more: bool,
}

/// The `metadata` bff sets on what it creates.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Metadata {
    /// The person it was created for.
    #[serde(deserialize_with = "text")]
    pub user_id: Option<String>,
    /// The credit pack a Checkout Session sells.
    #[serde(deserialize_with = "text")]
    pub pack: Option<String>,
}

/// A Checkout Session (`checkout.session.*`, or Stripe's answer to reading one).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CheckoutSession {
    /// `cs_…`.
    #[serde(deserialize_with = "text")]
    pub id: Option<String>,
    /// The user id bff set when it opened the session.
    #[serde(deserialize_with = "text")]
    pub client_reference_id: Option<String>,
    /// `cus_…`, by id or expanded.
    #[serde(deserialize_with = "reference")]
    pub customer: Option<String>,
    /// Its metadata.
    #[serde(deserialize_with = "object")]
    pub metadata: Metadata,
    /// `payment` (a credit pack) or `subscription`.
    #[serde(deserialize_with = "text")]
    pub mode: Option<String>,
    /// `open`, `complete` or `expired`.
    #[serde(deserialize_with = "text")]
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    #[serde(deserialize_with = "text")]
    pub payment_status: Option<String>,
    /// The amount charged, in the currency's minor unit.
    #[serde(deserialize_with = "int")]
    pub amount_total: Option<i64>,
    /// ISO currency, lower case.
    #[serde(deserialize_with = "text")]
    pub currency: Option<String>,
    /// `pi_…` of a payment-mode session.
    #[serde(deserialize_with = "text")]
    pub payment_intent: Option<String>,
    /// `sub_…` of a subscription-mode session.
    #[serde(deserialize_with = "text")]
    pub subscription: Option<String>,
    /// `in_…`: the first invoice of a subscription-mode session.
    #[serde(deserialize_with = "text")]
    pub invoice: Option<String>,
    /// The page the person pays on (an open session).
    #[serde(deserialize_with = "text")]
    pub url: Option<String>,
    /// When it stops being payable.
    #[serde(deserialize_with = "time")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A billing portal session: the link to it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PortalSession {
    /// The portal's page.
    #[serde(deserialize_with = "text")]
    pub url: Option<String>,
}

impl CheckoutSession {
    /// Whether its money is in (or none was due).
    pub(crate) fn paid(&self) -> bool {
        matches!(
            self.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        )
    }
}

/// A subscription (`customer.subscription.*`, or Stripe's answer to changing one).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Subscription {
    /// `sub_…`.
    #[serde(deserialize_with = "text")]
    pub id: Option<String>,
    /// Stripe's status, lower case (`active`, `past_due`, …).
    #[serde(deserialize_with = "text")]
    pub status: Option<String>,
    /// `cus_…`, by id or expanded.
    #[serde(deserialize_with = "reference")]
    pub customer: Option<String>,
    /// Its items (bff reads the first).
    #[serde(deserialize_with = "object")]
    pub items: List<SubscriptionItem>,
    /// Period start (older API versions; newer ones put it on the item).
    #[serde(deserialize_with = "time")]
    pub current_period_start: Option<DateTime<Utc>>,
    /// Period end (older API versions).
    #[serde(deserialize_with = "time")]
    pub current_period_end: Option<DateTime<Utc>>,
    /// Trial end.
    #[serde(deserialize_with = "time")]
    pub trial_end: Option<DateTime<Utc>>,
    /// Ends with the period.
    #[serde(deserialize_with = "flag")]
    pub cancel_at_period_end: bool,
    /// When canceled.
    #[serde(deserialize_with = "time")]
    pub canceled_at: Option<DateTime<Utc>>,
    /// Its metadata.
    #[serde(deserialize_with = "object")]
    pub metadata: Metadata,
}

/// An item of a subscription.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SubscriptionItem {
    /// `si_…`.
    #[serde(deserialize_with = "text")]
    pub id: Option<String>,
    /// Its price.
    #[serde(deserialize_with = "object")]
    pub price: Price,
    /// Period start (newer API versions).
    #[serde(deserialize_with = "time")]
    pub current_period_start: Option<DateTime<Utc>>,
    /// Period end (newer API versions).
    #[serde(deserialize_with = "time")]
    pub current_period_end: Option<DateTime<Utc>>,
}

/// A price.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Price {
    /// `price_…`.
    #[serde(deserialize_with = "text")]
    pub id: Option<String>,
}

/// One of Stripe's lists (`{"data": [...]}`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, bound = "T: serde::de::DeserializeOwned + Default")]
pub(crate) struct List<T> {
    /// Its items (of the page given).
    #[serde(deserialize_with = "list")]
    pub data: Vec<T>,
}

/// An invoice (`invoice.*`, or Stripe's answer to reading one).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Invoice {
    /// `in_…`.
    #[serde(deserialize_with = "text")]
    pub id: Option<String>,
    /// `sub_…` (older API versions).
    #[serde(deserialize_with = "text")]
    pub subscription: Option<String>,
    /// Where newer API versions name its subscription.
    #[serde(deserialize_with = "object")]
    pub parent: InvoiceParent,
    /// Its lines (bff reads the first).
    #[serde(deserialize_with = "object")]
    pub lines: List<InvoiceLine>,
    /// What was paid, in the currency's minor unit.
    #[serde(deserialize_with = "int")]
    pub amount_paid: Option<i64>,
    /// What is due.
    #[serde(deserialize_with = "int")]
    pub amount_due: Option<i64>,
    /// ISO currency, lower case.
    #[serde(deserialize_with = "text")]
    pub currency: Option<String>,
    /// `pi_…` (older API versions).
    #[serde(deserialize_with = "text")]
    pub payment_intent: Option<String>,
    /// Its payments (newer API versions, when expanded).
    #[serde(deserialize_with = "object")]
    pub payments: List<InvoicePayment>,
    /// `ch_…` (older API versions).
    #[serde(deserialize_with = "text")]
    pub charge: Option<String>,
}

impl Invoice {
    /// The subscription it is for, in the older and newer API shapes.
    pub(crate) fn subscription(&self) -> Option<&str> {
        self.subscription
            .as_deref()
            .or(self.parent.subscription_details.subscription.as_deref())
            .or_else(|| self.lines.data.first()?.subscription.as_deref())
    }

    /// The payment intent it was paid with, in the older and newer API shapes.
    pub(crate) fn payment_intent(&self) -> Option<&str> {
        self.payment_intent.as_deref().or_else(|| {
            self.payments
                .data
                .iter()
                .find_map(|p| p.payment.payment_intent.as_deref())
        })
    }
}

/// An invoice's `parent` (newer API versions).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InvoiceParent {
    /// Set when the invoice is a subscription's.
    #[serde(deserialize_with = "object")]
    pub subscription_details: SubscriptionDetails,
}

/// An invoice parent's `subscription_details`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SubscriptionDetails {
    /// `sub_…`.
    #[serde(deserialize_with = "text")]
    pub subscription: Option<String>,
}

/// A line of an invoice.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InvoiceLine {
    /// `sub_…` of a subscription's line.
    #[serde(deserialize_with = "text")]
    pub subscription: Option<String>,
    /// The period it pays for.
    #[serde(deserialize_with = "object")]
    pub period: Period,
}

/// A period.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Period {
    /// Its start.
    #[serde(deserialize_with = "time")]
    pub start: Option<DateTime<Utc>>,
    /// Its end.
    #[serde(deserialize_with = "time")]
    pub end: Option<DateTime<Utc>>,
}

/// A payment of an invoice.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InvoicePayment {
    /// What paid it.
    #[serde(deserialize_with = "object")]
    pub payment: Payment,
}

/// What paid an invoice.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Payment {
    /// `pi_…`.
    #[serde(deserialize_with = "text")]
    pub payment_intent: Option<String>,
}

/// A charge (`charge.refunded`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Charge {
    /// `ch_…`.
    #[serde(deserialize_with = "text")]
    pub id: Option<String>,
    /// `pi_…`.
    #[serde(deserialize_with = "text")]
    pub payment_intent: Option<String>,
    /// `in_…` when it paid a subscription's invoice.
    #[serde(deserialize_with = "text")]
    pub invoice: Option<String>,
    /// `cus_…`, by id or expanded.
    #[serde(deserialize_with = "reference")]
    pub customer: Option<String>,
    /// The amount charged, in the currency's minor unit.
    #[serde(deserialize_with = "int")]
    pub amount: Option<i64>,
    /// What is refunded of it so far (cumulative).
    #[serde(deserialize_with = "int")]
    pub amount_refunded: Option<i64>,
    /// ISO currency, lower case.
    #[serde(deserialize_with = "text")]
    pub currency: Option<String>,
    /// Its refunds (listed by older API versions).
    #[serde(deserialize_with = "object")]
    pub refunds: List<Refund>,
}

/// A refund (`refund.*`, `charge.refund.updated`, or in a charge's list).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Refund {
    /// `re_…`.
    #[serde(deserialize_with = "text")]
    pub id: Option<String>,
    /// `pi_…` of the payment refunded.
    #[serde(deserialize_with = "text")]
    pub payment_intent: Option<String>,
    /// The amount refunded, in the currency's minor unit.
    #[serde(deserialize_with = "int")]
    pub amount: Option<i64>,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    #[serde(deserialize_with = "text")]
    pub status: Option<String>,
}

/// A dispute (`charge.dispute.*`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Dispute {
    /// `dp_…`.
    #[serde(deserialize_with = "text")]
    pub id: Option<String>,
    /// `pi_…` of the payment disputed.
    #[serde(deserialize_with = "text")]
    pub payment_intent: Option<String>,
    /// The amount disputed, in the currency's minor unit.
    #[serde(deserialize_with = "int")]
    pub amount: Option<i64>,
    /// `won`, `lost`, `warning_closed`, … (read when it closes).
    #[serde(deserialize_with = "text")]
    pub status: Option<String>,
}

/// Stripe's answer to a call it refused (`{"error": {…}}`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorAnswer {
    /// What went wrong.
    #[serde(deserialize_with = "object")]
    pub error: ApiError,
}

/// An error Stripe answered.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ApiError {
    /// e.g. `invalid_request_error`.
    #[serde(rename = "type", deserialize_with = "text")]
    pub kind: Option<String>,
    /// e.g. `charge_already_refunded`.
    #[serde(deserialize_with = "text")]
    pub code: Option<String>,
    /// For people.
    #[serde(deserialize_with = "text")]
    pub message: Option<String>,
}
