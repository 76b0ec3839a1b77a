//! What a notification says, written for people, from its kind and the facts recorded with it:
//! the inbox's title and body, the push's, and the values the email templates fill in. The one
//! place notifications are worded.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::db::notifications::NotificationKind;

/// A notification's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words {
    /// One line.
    pub title: String,
    /// A sentence or two.
    pub body: String,
    /// Where in the app it leads (a path).
    pub path: &'static str,
    /// The link's label in an email.
    pub action: &'static str,
    /// The facts as the templates use them (`{{prompt}}`, `{{balance}}`, …).
    pub values: BTreeMap<&'static str, String>,
}

fn text<'a>(facts: &'a Value, key: &str) -> Option<&'a str> {
    facts
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn number(facts: &Value, key: &str) -> i64 {
    facts.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// Credit cents as people read them: `4.50 credits`, `1 credit`.
pub fn credits(cents: i64) -> String {
    let whole = cents / 100;
    let part = (cents % 100).abs();
    let sign = if cents < 0 && whole == 0 { "-" } else { "" };
    let amount = if part == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{part:02}")
    };
    let unit = if cents == 100 { "credit" } else { "credits" };
    format!("{amount} {unit}")
}

/// Money in a currency's minor unit: `9.00 USD`.
pub fn money(cents: i64, currency: &str) -> String {
    format!(
        "{}.{:02} {}",
        cents / 100,
        (cents % 100).abs(),
        currency.to_uppercase()
    )
}

fn photos(n: i64) -> String {
    if n == 1 {
        "1 photo".to_owned()
    } else {
        format!("{n} photos")
    }
}

fn quoted(prompt: &str) -> String {
    let mut short: String = prompt.chars().take(80).collect();
    if short.len() < prompt.len() {
        short.push('…');
    }
    format!("“{short}”")
}

/// The words of a notification of `kind` with `facts`.
pub fn words(kind: NotificationKind, facts: &Value) -> Words {
    use NotificationKind as K;
    let mut values = BTreeMap::new();
    let prompt = text(facts, "prompt").unwrap_or("Your photo job");
    values.insert("prompt", prompt.to_owned());
    let (title, body, path, action) = match kind {
        K::JobCompleted => {
            let count = photos(number(facts, "photoCount"));
            values.insert("photos", count.clone());
            (
                "Your photos are ready".to_owned(),
                format!("{} finished: {count} ready to download.", quoted(prompt)),
                "/",
                "Download your photos",
            )
        }
        K::JobFailed => {
            let reason = text(facts, "failureReason").unwrap_or("the job could not be processed");
            values.insert("reason", reason.to_owned());
            (
                "A photo job failed".to_owned(),
                format!(
                    "{} failed: {reason}. Its credits were refunded.",
                    quoted(prompt)
                ),
                "/",
                "Try again",
            )
        }
        K::CreditsLow => {
            let balance = credits(number(facts, "balanceCents"));
            values.insert("balance", balance.clone());
            (
                "Your credits are running low".to_owned(),
                format!("You have {balance} left. Buy a pack to keep your jobs running."),
                "/billing",
                "Buy credits",
            )
        }
        K::PaymentFailed => {
            let amount = money(
                number(facts, "amountCents"),
                text(facts, "currency").unwrap_or("usd"),
            );
            values.insert("amount", amount.clone());
            (
                "Your payment failed".to_owned(),
                format!(
                    "We could not charge {amount} for your subscription. Update your payment method to keep your plan."
                ),
                "/billing",
                "Update payment method",
            )
        }
        K::TrialEnding => {
            let when = facts
                .get("trialEnd")
                .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok())
                .map_or_else(
                    || "soon".to_owned(),
                    |d| format!("on {}", d.format("%B %-d, %Y")),
                );
            values.insert("when", when.clone());
            (
                "Your trial ends soon".to_owned(),
                format!("Your free trial ends {when}. Add a payment method to keep your plan."),
                "/billing",
                "Review your plan",
            )
        }
        K::SubscriptionCanceled => {
            let plan = text(facts, "plan").unwrap_or("paid").to_owned();
            values.insert("plan", plan.clone());
            (
                "Your subscription ended".to_owned(),
                format!("Your {plan} plan has ended; you are on the Free plan now."),
                "/billing",
                "Choose a plan",
            )
        }
        K::PurchaseRefunded => {
            let amount = money(
                number(facts, "refundedCents"),
                text(facts, "currency").unwrap_or("usd"),
            );
            let reversed = credits(number(facts, "creditsReversedCents"));
            values.insert("amount", amount.clone());
            values.insert("credits", reversed.clone());
            (
                "A purchase was refunded".to_owned(),
                format!(
                    "{amount} was refunded to you; {reversed} were taken back from your balance."
                ),
                "/billing",
                "See your purchases",
            )
        }
        K::CreditsHeld => {
            let held = credits(number(facts, "heldCents"));
            values.insert("credits", held.clone());
            (
                "Credits on hold".to_owned(),
                format!(
                    "A payment of yours is disputed, so {held} from it are on hold until the dispute closes."
                ),
                "/billing",
                "See your credits",
            )
        }
    };
    values.insert("title", title.clone());
    values.insert("body", body.clone());
    Words {
        title,
        body,
        path,
        action,
        values,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_kind_has_words_made_of_its_facts() {
        let done = words(
            NotificationKind::JobCompleted,
            &json!({ "prompt": "Brighten the sunset", "photoCount": 3 }),
        );
        assert_eq!(done.title, "Your photos are ready");
        assert_eq!(
            done.body,
            "“Brighten the sunset” finished: 3 photos ready to download."
        );
        let low = words(
            NotificationKind::CreditsLow,
            &json!({ "balanceCents": 450 }),
        );
        assert_eq!(
            low.body,
            "You have 4.50 credits left. Buy a pack to keep your jobs running."
        );
        let failed = words(
            NotificationKind::PaymentFailed,
            &json!({ "amountCents": 900, "currency": "eur" }),
        );
        assert!(failed.body.contains("9.00 EUR"), "{}", failed.body);
        let trial = words(
            NotificationKind::TrialEnding,
            &json!({ "trialEnd": "2026-12-10T00:00:00Z" }),
        );
        assert!(
            trial.body.contains("on December 10, 2026"),
            "{}",
            trial.body
        );
        for kind in NotificationKind::ALL {
            let w = words(kind, &json!({}));
            assert!(
                !w.title.is_empty() && w.body.ends_with('.'),
                "{kind}: {w:?}"
            );
        }
        assert_eq!(credits(100), "1 credit");
        assert_eq!(credits(12_345), "123.45 credits");
    }
}
