//! Reading a Stripe subscription into the [`Snapshot`] bff stores
//! ([`crate::db::stripe::subscriptions::apply_snapshot`] writes it).

use serde_json::Value;

pub(crate) use crate::db::stripe::subscriptions::Snapshot;
use crate::db::subscriptions::SubscriptionStatus;
use crate::stripe::objects::{self, Subscription};

impl Subscription {
    /// What bff keeps of it; `None` when it lacks an id or a known status.
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        let item = self.items.data.first();
        let status = SubscriptionStatus::parse(&self.status.as_deref()?.to_ascii_uppercase())?;
        Some(Snapshot {
            subscription_id: self.id.clone()?,
            customer_id: self.customer.clone(),
            price_id: item.and_then(|item| item.price.id.clone()),
            status,
            current_period_start: self
                .current_period_start
                .or_else(|| item?.current_period_start),
            current_period_end: self.current_period_end.or_else(|| item?.current_period_end),
            trial_end: self.trial_end,
            cancel_at_period_end: self.cancel_at_period_end,
            canceled_at: self.canceled_at,
            user_id: self.metadata.user_id.clone(),
        })
    }
}

impl Snapshot {
    /// Reads a Stripe `subscription` object; `None` when it lacks an id or a known status.
    pub(crate) fn from_json(object: &Value) -> Option<Snapshot> {
        objects::read::<Subscription>(object).snapshot()
    }
}
