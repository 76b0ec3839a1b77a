//! Notification emails: a text and an HTML part from the templates in
//! `templates/notifications/` (one pair per kind, and one for several finished jobs, inside a
//! layout), sent over SMTP. Every email carries one-click unsubscribe headers (RFC 8058) and a
//! `Message-ID` derived from its message's idempotency key, so a resend after a sender died
//! mid-send is recognisably the same email.

use std::collections::BTreeMap;

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use secrecy::ExposeSecret;

pub use super::smtp::SendError;
use super::unsubscribe::Signer;
use super::words::{Words, words};
use crate::config::notify::Email;
use crate::db::notifications::NotificationKind;
use crate::db::notifications::deliveries::Claimed;

/// A kind's text and HTML template.
fn template(kind: NotificationKind) -> (&'static str, &'static str) {
    macro_rules! pair {
        ($name:literal) => {
            (
                include_str!(concat!("../../templates/notifications/", $name, ".txt")),
                include_str!(concat!("../../templates/notifications/", $name, ".html")),
            )
        };
    }
    use NotificationKind as K;
    match kind {
        K::JobCompleted => pair!("job_completed"),
        K::JobFailed => pair!("job_failed"),
        K::CreditsLow => pair!("credits_low"),
        K::PaymentFailed => pair!("payment_failed"),
        K::TrialEnding => pair!("trial_ending"),
        K::SubscriptionCanceled => pair!("subscription_canceled"),
        K::PurchaseRefunded => pair!("purchase_refunded"),
        K::CreditsHeld => pair!("credits_held"),
    }
}

const LAYOUT_TEXT: &str = include_str!("../../templates/notifications/layout.txt");
const LAYOUT_HTML: &str = include_str!("../../templates/notifications/layout.html");
const JOBS_TEXT: &str = include_str!("../../templates/notifications/jobs.txt");
const JOBS_HTML: &str = include_str!("../../templates/notifications/jobs.html");

/// HTML-escapes `value`.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `template` with each `{{key}}` replaced by its value (escaped for HTML when `html`); keys in
/// `raw` go in as they are (already-made HTML).
fn fill(
    template: &str,
    values: &BTreeMap<&str, String>,
    raw: &BTreeMap<&str, String>,
    html: bool,
) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = &after[..end];
        if let Some(value) = raw.get(key) {
            out.push_str(value);
        } else if let Some(value) = values.get(key) {
            out.push_str(&if html { escape(value) } else { value.clone() });
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// An email ready to send.
#[derive(Clone, Debug)]
pub struct Composed {
    /// `Subject:`.
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// The one-click unsubscribe URL.
    pub unsubscribe: String,
    /// `Message-ID:` (with its angle brackets).
    pub message_id: String,
}

/// What a message's email says: one notification's kind template, or (several finished
/// jobs) the summary of them all.
pub(crate) fn compose(
    rows: &[Claimed],
    app_url: &str,
    public_url: &str,
    signer: &Signer,
) -> Composed {
    let first = &rows[0];
    let mut kinds: Vec<NotificationKind> = rows.iter().map(|r| r.kind).collect();
    kinds.sort_by_key(|k| k.as_db());
    kinds.dedup();
    let unsubscribe = format!(
        "{public_url}/notifications/unsubscribe?token={}",
        signer.token(&first.user_id, &kinds)
    );
    let host = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or("bff");
    let message_id = format!("<notification-{}@{host}>", first.message_id);
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    values.insert("name", first.name.clone());
    values.insert("unsubscribe", unsubscribe.clone());
    values.insert(
        "preferences",
        format!("{app_url}/notifications/preferences"),
    );
    let mut raw = BTreeMap::new();
    let (subject, text, html) = if rows.len() == 1 {
        let Words {
            title,
            path,
            action,
            values: facts,
            ..
        } = words(first.kind, &first.facts);
        values.extend(facts);
        values.insert("link", format!("{app_url}{path}"));
        values.insert("action", action.to_owned());
        let (text, html) = template(first.kind);
        (title, text, html)
    } else {
        let done = rows
            .iter()
            .filter(|r| r.kind == NotificationKind::JobCompleted)
            .count();
        let failed = rows.len() - done;
        let summary = match (done, failed) {
            (d, 0) => format!("{d} jobs finished"),
            (0, f) => format!("{f} jobs failed"),
            (d, f) => format!("{d} jobs finished, {f} failed"),
        };
        let lines: Vec<Words> = rows.iter().map(|r| words(r.kind, &r.facts)).collect();
        values.insert(
            "list",
            lines
                .iter()
                .map(|w| format!("- {}", w.body))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        raw.insert(
            "list",
            lines
                .iter()
                .map(|w| format!("<li>{}</li>", escape(&w.body)))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        values.insert("summary", summary.clone());
        values.insert("link", format!("{app_url}/"));
        values.insert("action", "Open your gallery".to_owned());
        (summary, JOBS_TEXT, JOBS_HTML)
    };
    values.insert(
        "why",
        "You get this email because you have an account with us.".to_owned(),
    );
    values.insert("subject", subject.clone());
    let text_content = fill(text, &values, &BTreeMap::new(), false);
    let html_content = fill(html, &values, &raw, true);
    let text = fill(
        LAYOUT_TEXT,
        &values,
        &BTreeMap::from([("content", text_content.trim_end().to_owned())]),
        false,
    );
    let html = fill(
        LAYOUT_HTML,
        &values,
        &BTreeMap::from([("content", html_content)]),
        true,
    );
    Composed {
        subject,
        text,
        html,
        unsubscribe,
        message_id,
    }
}

/// Sends email through the configured SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

/// Where emails go: an SMTP server, or a directory (`file://`, `bff dev`'s catcher).
#[derive(Clone)]
enum Transport {
    Smtp(std::sync::Arc<super::smtp::Smtp>),
    Dir(super::mail_dir::MailDir),
}

impl Mailer {
    /// The mailer for `config`, keeping up to `connections` SMTP connections open; an error
    /// names what is wrong with the URL.
    pub fn new(config: &Email, connections: usize) -> Result<Mailer, String> {
        let from = config
            .from
            .parse()
            .map_err(|e| format!("BFF_EMAIL_FROM: {e}"))?;
        if let Some(dir) = config.mail_dir() {
            let transport = Transport::Dir(super::mail_dir::MailDir::new(dir));
            return Ok(Mailer { transport, from });
        }
        let smtp = super::smtp::Smtp::new(
            config.smtp_url.expose_secret(),
            config.ca_file.as_deref(),
            connections,
        )?;
        let transport = std::sync::Arc::new(smtp);
        Ok(Mailer {
            transport: Transport::Smtp(transport),
            from,
        })
    }

    /// The directory that catches mail, for `file://`.
    pub fn mail_dir(&self) -> Option<&super::mail_dir::MailDir> {
        match &self.transport {
            Transport::Dir(dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
    }

    /// Sends `email` to `name <address>`.
    pub(crate) async fn send(
        &self,
        name: &str,
        address: &str,
        email: &Composed,
    ) -> Result<(), SendError> {
        let to: Mailbox = format!("{} <{address}>", name.replace(['<', '>', '"'], ""))
            .parse()
            .or_else(|_| address.parse())
            .map_err(|e| SendError::Permanent(format!("the address is not valid ({e})")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.clone())
            .subject(&email.subject)
            .message_id(Some(email.message_id.clone()))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{}>", email.unsubscribe),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("the message cannot be built ({e})")))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message.envelope(), &message.formatted()).await,
            Transport::Dir(dir) => dir
                .write(
                    &message.formatted(),
                    &super::mail_dir::Letter {
                        message_id: &email.message_id,
                        to: &to.to_string(),
                        subject: &email.subject,
                        text: &email.text,
                        html: &email.html,
                        unsubscribe: &email.unsubscribe,
                    },
                )
                .await
                .map_err(|e| SendError::Transient(format!("cannot write the email: {e}"))),
        }
    }
}
