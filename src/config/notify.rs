//! Notifications: `BFF_SMTP_URL`, `BFF_EMAIL_FROM`, `BFF_APP_URL`, `BFF_PUBLIC_URL`,
//! `BFF_EXPO_PUSH_URL`, `BFF_EXPO_ACCESS_TOKEN`, `BFF_NOTIFY_*`.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::env::{Env, Variable, is_http_url};

/// `BFF_SMTP_URL`.
pub const SMTP_URL: Variable = Variable::optional(
    "BFF_SMTP_URL",
    "SMTP server for notification emails: smtp://user:password@host:587 (STARTTLS required; ?tls=opportunistic, or ?tls=none for a local catcher) or smtps://user:password@host:465; file://DIRECTORY writes each email there as an .eml file instead (bff dev's default: file://.bff/mail)",
    "emails are not sent (their deliveries are SKIPPED)",
);
/// `BFF_SMTP_CA_FILE`.
pub const SMTP_CA_FILE: Variable = Variable::optional(
    "BFF_SMTP_CA_FILE",
    "PEM certificates trusted for the SMTP server besides Mozilla's roots (a relay with a private CA)",
    "Mozilla's roots only",
);
/// `BFF_EMAIL_FROM`.
pub const EMAIL_FROM: Variable = Variable::optional(
    "BFF_EMAIL_FROM",
    "the sender of notification emails, e.g. `Darkroom <hello@example.com>`",
    "required with BFF_SMTP_URL",
);
/// `BFF_APP_URL`.
pub const APP_URL: Variable = Variable::optional(
    "BFF_APP_URL",
    "the app's public URL, for the links in emails and pushes",
    "BETTER_AUTH_URL",
);
/// `BFF_PUBLIC_URL`.
pub const PUBLIC_URL: Variable = Variable::optional(
    "BFF_PUBLIC_URL",
    "bff's own public URL, for the one-click unsubscribe links (POST /notifications/unsubscribe)",
    "required with BFF_SMTP_URL",
);
/// `BFF_EXPO_PUSH_URL`.
pub const EXPO_PUSH_URL: Variable = Variable::value(
    "BFF_EXPO_PUSH_URL",
    "Expo's push API (tests point it at a fake)",
    "https://exp.host/--/api/v2/push/send",
);
/// `BFF_EXPO_ACCESS_TOKEN`.
pub const EXPO_ACCESS_TOKEN: Variable = Variable::optional(
    "BFF_EXPO_ACCESS_TOKEN",
    "Expo access token, when the project's push security requires one",
    "pushes are sent without one",
);
/// `BFF_NOTIFY_BATCH_SECONDS`.
pub const BATCH_SECONDS: Variable = Variable::number(
    "BFF_NOTIFY_BATCH_SECONDS",
    "how long a finished job's email waits for others of the same person to go in one message",
    60,
    0,
    3_600,
);
/// `BFF_NOTIFY_RETRY_SECONDS`.
pub const RETRY_SECONDS: Variable = Variable::number(
    "BFF_NOTIFY_RETRY_SECONDS",
    "the first retry's delay after a failed send; each next one doubles, up to an hour",
    30,
    1,
    3_600,
);
/// `BFF_NOTIFY_MAX_ATTEMPTS`.
pub const MAX_ATTEMPTS: Variable = Variable::number(
    "BFF_NOTIFY_MAX_ATTEMPTS",
    "attempts before a delivery is FAILED (the default retries for about six hours)",
    12,
    1,
    100,
);
/// `BFF_NOTIFY_CONCURRENCY`.
pub const CONCURRENCY: Variable = Variable::number(
    "BFF_NOTIFY_CONCURRENCY",
    "how many messages one serve sends at once (each on its own SMTP connection or push request)",
    8,
    1,
    64,
);
/// `BFF_NOTIFY_POLL_MS`.
pub const POLL_MS: Variable = Variable::number(
    "BFF_NOTIFY_POLL_MS",
    "how often serve looks for deliveries due, in ms (0 turns sending off in this process)",
    1_000,
    0,
    600_000,
);
/// `BFF_NOTIFY_LEASE_SECONDS`.
pub const LEASE_SECONDS: Variable = Variable::number(
    "BFF_NOTIFY_LEASE_SECONDS",
    "how long a sender holds the messages it took; one that dies mid-send leaves them to another after this",
    120,
    5,
    3_600,
);
/// `BFF_NOTIFY_CREDITS_LOW_CENTS`.
pub const CREDITS_LOW_CENTS: Variable = Variable::number(
    "BFF_NOTIFY_CREDITS_LOW_CENTS",
    "CREDITS_LOW is told when a job's charge takes the balance below this, in credit cents (written to the database at start)",
    500,
    0,
    1_000_000_000,
);

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[
    SMTP_URL,
    SMTP_CA_FILE,
    EMAIL_FROM,
    APP_URL,
    PUBLIC_URL,
    EXPO_PUSH_URL,
    EXPO_ACCESS_TOKEN,
    BATCH_SECONDS,
    RETRY_SECONDS,
    MAX_ATTEMPTS,
    POLL_MS,
    CONCURRENCY,
    LEASE_SECONDS,
    CREDITS_LOW_CENTS,
];

/// How emails leave.
#[derive(Clone, Debug)]
pub struct Email {
    /// `smtp://…` or `smtps://…` (with its password).
    pub smtp_url: SecretString,
    /// The `From:` mailbox.
    pub from: String,
    /// Certificates trusted for the SMTP server besides Mozilla's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// bff's public URL, without a trailing slash.
    pub public_url: String,
}

impl Email {
    /// The directory emails are written to instead of being sent, for `file://DIRECTORY`.
    pub fn mail_dir(&self) -> Option<std::path::PathBuf> {
        self.smtp_url
            .expose_secret()
            .strip_prefix("file://")
            .map(std::path::PathBuf::from)
    }
}

/// Notifications' delivery.
#[derive(Clone, Debug)]
pub struct Notify {
    /// Email, when configured.
    pub email: Option<Email>,
    /// The app's public URL, without a trailing slash.
    pub app_url: String,
    /// Expo's push endpoint.
    pub expo_push_url: String,
    /// Expo's access token.
    pub expo_access_token: Option<SecretString>,
    /// How long batched emails wait.
    pub batch_window: Duration,
    /// The first retry's delay.
    pub retry_first: Duration,
    /// Attempts before FAILED.
    pub max_attempts: u32,
    /// How often to look for deliveries; `None` when this process sends none.
    pub poll: Option<Duration>,
    /// How many messages are in flight at once.
    pub concurrency: usize,
    /// How long a sender holds what it claimed.
    pub lease: Duration,
    /// The low-credits threshold, in cents.
    pub credits_low_cents: i64,
}

fn smtp_url(value: &str) -> Result<SecretString, String> {
    if value
        .strip_prefix("file://")
        .is_some_and(|dir| !dir.is_empty())
    {
        return Ok(SecretString::from(value));
    }
    let scheme_ok = value.starts_with("smtp://") || value.starts_with("smtps://");
    let tls_ok = match value.split_once('?') {
        None => true,
        Some((_, query)) => ["tls=none", "tls=opportunistic", "tls=required"].contains(&query),
    };
    if scheme_ok && tls_ok && value.contains("://") && value.len() > "smtps://".len() {
        Ok(SecretString::from(value))
    } else {
        Err("expected smtp://[user:password@]host[:port][?tls=required|opportunistic|none] or smtps://[user:password@]host[:port] or file://DIRECTORY".into())
    }
}

fn url(value: &str) -> Result<String, String> {
    if is_http_url(value) {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err("expected an http:// or https:// URL".into())
    }
}

fn mailbox(value: &str) -> Result<String, String> {
    value
        .parse::<lettre::message::Mailbox>()
        .map(|_| value.to_owned())
        .map_err(|e| format!("expected an address or `Name <address>` ({e})"))
}

impl Notify {
    /// Reads the variables of this module; links default to the app at `better_auth_url`.
    pub fn read(env: &mut Env, better_auth_url: &str) -> Self {
        let smtp_url = env.parse(&SMTP_URL, smtp_url);
        let from = env.parse(&EMAIL_FROM, mailbox);
        let public_url = env.parse(&PUBLIC_URL, url);
        let email = match (smtp_url, from, public_url) {
            (Some(smtp_url), Some(from), Some(public_url)) => Some(Email {
                smtp_url,
                from,
                ca_file: env.text(&SMTP_CA_FILE).map(std::path::PathBuf::from),
                public_url,
            }),
            (Some(_), from, public_url) => {
                if from.is_none() {
                    env.fail(&EMAIL_FROM, "required with BFF_SMTP_URL");
                }
                if public_url.is_none() {
                    env.fail(&PUBLIC_URL, "required with BFF_SMTP_URL");
                }
                None
            }
            (None, _, _) => None,
        };
        Notify {
            email,
            app_url: env
                .parse(&APP_URL, url)
                .unwrap_or_else(|| better_auth_url.trim_end_matches('/').to_owned()),
            expo_push_url: env.parse(&EXPO_PUSH_URL, url).unwrap_or_default(),
            expo_access_token: env.text(&EXPO_ACCESS_TOKEN).map(SecretString::from),
            batch_window: Duration::from_secs(env.number(&BATCH_SECONDS)),
            retry_first: Duration::from_secs(env.number(&RETRY_SECONDS)),
            max_attempts: u32::try_from(env.number(&MAX_ATTEMPTS)).unwrap_or(12),
            poll: Some(env.millis(&POLL_MS)).filter(|poll| !poll.is_zero()),
            concurrency: usize::try_from(env.number(&CONCURRENCY)).unwrap_or(8),
            lease: Duration::from_secs(env.number(&LEASE_SECONDS)),
            credits_low_cents: i64::try_from(env.number(&CREDITS_LOW_CENTS)).unwrap_or(500),
        }
    }

    /// The delay before attempt `attempts + 1`, after `attempts` failed: doubling from the
    /// first, at most an hour.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doubled = self
            .retry_first
            .saturating_mul(1 << attempts.saturating_sub(1).min(16));
        doubled.min(Duration::from_secs(3_600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Notify, crate::config::ConfigErrors> {
        let vars: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut env = Env::new(move |k| vars.get(k).cloned());
        let notify = Notify::read(&mut env, "https://app.example.com/");
        env.finish(notify)
    }

    #[test]
    fn email_needs_a_sender_and_a_public_url_and_a_known_scheme() {
        let off = read(&[]).unwrap();
        assert!(off.email.is_none());
        assert_eq!(off.app_url, "https://app.example.com");
        let errors = read(&[("BFF_SMTP_URL", "smtp://mail:587")])
            .unwrap_err()
            .to_string();
        assert!(
            errors.contains("BFF_EMAIL_FROM") && errors.contains("BFF_PUBLIC_URL"),
            "{errors}"
        );
        let errors = read(&[("BFF_SMTP_URL", "http://mail")])
            .unwrap_err()
            .to_string();
        assert!(errors.contains("BFF_SMTP_URL"), "{errors}");
        let errors = read(&[
            ("BFF_SMTP_URL", "smtps://u:p@mail"),
            ("BFF_EMAIL_FROM", "not an address"),
            ("BFF_PUBLIC_URL", "https://api.example.com"),
        ])
        .unwrap_err()
        .to_string();
        assert!(errors.contains("BFF_EMAIL_FROM"), "{errors}");
        let on = read(&[
            ("BFF_SMTP_URL", "smtp://u:p@mail:587?tls=none"),
            ("BFF_EMAIL_FROM", "Darkroom <hello@example.com>"),
            ("BFF_PUBLIC_URL", "https://api.example.com/"),
        ])
        .unwrap();
        let on = on.email.unwrap();
        assert_eq!(on.public_url, "https://api.example.com");
        assert_eq!(on.mail_dir(), None);
        let dir = read(&[
            ("BFF_SMTP_URL", "file://.bff/mail"),
            ("BFF_EMAIL_FROM", "hello@example.com"),
            ("BFF_PUBLIC_URL", "http://127.0.0.1:8080"),
        ])
        .unwrap();
        let dir = dir.email.unwrap().mail_dir();
        assert_eq!(dir, Some(std::path::PathBuf::from(".bff/mail")));
        assert!(read(&[("BFF_SMTP_URL", "file://")]).is_err());
    }

    #[test]
    fn retries_double_from_the_first_up_to_an_hour() {
        let notify = read(&[("BFF_NOTIFY_RETRY_SECONDS", "30")]).unwrap();
        let delays: Vec<u64> = (1..=9).map(|n| notify.backoff(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let total: u64 = (1..notify.max_attempts)
            .map(|n| notify.backoff(n).as_secs())
            .sum();
        assert!(total > 5 * 3600, "retries go on for hours: {total} s");
    }
}
