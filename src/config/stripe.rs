//! Stripe: `STRIPE_SECRET_KEY`, `STRIPE_WEBHOOK_SECRET`, `STRIPE_API_BASE`,
//! `STRIPE_SUCCESS_URL`, `STRIPE_CANCEL_URL`, `STRIPE_PORTAL_RETURN_URL`,
//! `BFF_STRIPE_SYNC_INTERVAL_SECONDS`.

use secrecy::SecretString;

use super::env::{Env, Variable, is_http_url};

/// `STRIPE_SECRET_KEY`.
pub const SECRET_KEY: Variable = Variable::optional(
    "STRIPE_SECRET_KEY",
    "Stripe API key (sk_… or rk_…)",
    "billing operations answer an error",
);
/// `STRIPE_WEBHOOK_SECRET`.
pub const WEBHOOK_SECRET: Variable = Variable::optional(
    "STRIPE_WEBHOOK_SECRET",
    "signing secret of the webhook endpoint (whsec_…)",
    "webhooks are refused with 503",
);
/// `STRIPE_API_BASE`.
pub const API_BASE: Variable = Variable::value(
    "STRIPE_API_BASE",
    "Stripe's API base URL (tests point it at a fake)",
    "https://api.stripe.com",
);
/// `STRIPE_SUCCESS_URL`.
pub const SUCCESS_URL: Variable = Variable::optional(
    "STRIPE_SUCCESS_URL",
    "where Checkout returns after payment",
    "{BETTER_AUTH_URL}/billing?checkout=success",
);
/// `STRIPE_CANCEL_URL`.
pub const CANCEL_URL: Variable = Variable::optional(
    "STRIPE_CANCEL_URL",
    "where Checkout returns when abandoned",
    "{BETTER_AUTH_URL}/billing?checkout=canceled",
);
/// `STRIPE_PORTAL_RETURN_URL`.
pub const PORTAL_RETURN_URL: Variable = Variable::optional(
    "STRIPE_PORTAL_RETURN_URL",
    "where the billing portal returns",
    "{BETTER_AUTH_URL}/billing",
);

/// `BFF_STRIPE_SYNC_INTERVAL_SECONDS`.
pub const SYNC_INTERVAL_SECONDS: Variable = Variable::number(
    "BFF_STRIPE_SYNC_INTERVAL_SECONDS",
    "how often serve reconciles with Stripe's event list (one instance at a time; 0 turns it off; needs STRIPE_SECRET_KEY)",
    900,
    0,
    86_400,
);

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[
    SECRET_KEY,
    WEBHOOK_SECRET,
    API_BASE,
    SUCCESS_URL,
    CANCEL_URL,
    PORTAL_RETURN_URL,
    SYNC_INTERVAL_SECONDS,
];

/// How bff talks to Stripe.
#[derive(Clone, Debug)]
pub struct Stripe {
    /// API key; `None` disables the operations that call Stripe.
    pub secret_key: Option<SecretString>,
    /// Webhook signing secret; `None` refuses webhooks.
    pub webhook_secret: Option<SecretString>,
    /// API base URL, without a trailing slash.
    pub api_base: String,
    /// Checkout's return URL after payment.
    pub success_url: String,
    /// Checkout's return URL when abandoned.
    pub cancel_url: String,
    /// The billing portal's return URL.
    pub portal_return_url: String,
    /// How often `serve` runs the Stripe sync; `None` when off.
    pub sync_interval: Option<std::time::Duration>,
}

fn url(value: &str) -> Result<String, String> {
    if is_http_url(value) {
        Ok(value.to_owned())
    } else {
        Err("expected an http:// or https:// URL".into())
    }
}

fn prefixed(
    prefixes: &'static [&'static str],
    what: &'static str,
) -> impl Fn(&str) -> Result<SecretString, String> {
    move |value| {
        if prefixes.iter().any(|p| value.starts_with(p)) {
            Ok(SecretString::from(value))
        } else {
            Err(format!("expected {what}"))
        }
    }
}

impl Stripe {
    /// Reads the variables of this module; the return URLs default below the app's
    /// `better_auth_url`.
    pub fn read(env: &mut Env, better_auth_url: &str) -> Self {
        let app = better_auth_url.trim_end_matches('/');
        Stripe {
            secret_key: env.parse(
                &SECRET_KEY,
                prefixed(
                    &["sk_", "rk_"],
                    "a Stripe secret key (sk_…) or restricted key (rk_…)",
                ),
            ),
            webhook_secret: env.parse(
                &WEBHOOK_SECRET,
                prefixed(&["whsec_"], "the endpoint's signing secret (whsec_…)"),
            ),
            api_base: env
                .parse(&API_BASE, url)
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned(),
            success_url: env
                .parse(&SUCCESS_URL, url)
                .unwrap_or_else(|| format!("{app}/billing?checkout=success")),
            cancel_url: env
                .parse(&CANCEL_URL, url)
                .unwrap_or_else(|| format!("{app}/billing?checkout=canceled")),
            portal_return_url: env
                .parse(&PORTAL_RETURN_URL, url)
                .unwrap_or_else(|| format!("{app}/billing")),
            sync_interval: Some(env.number(&SYNC_INTERVAL_SECONDS))
                .filter(|seconds| *seconds > 0)
                .map(std::time::Duration::from_secs),
        }
    }
}
