//! Sending notifications: every `bff serve` runs [`send`], which claims the deliveries due
//! (leased with `SKIP LOCKED`, so any number of processes share the queue and none sends a
//! message another holds), sends each message by email or push, and records the outcome. A
//! failure to reach the SMTP server or the push provider is retried with backoff (doubling
//! from `BFF_NOTIFY_RETRY_SECONDS`, at most an hour) until `BFF_NOTIFY_MAX_ATTEMPTS`, then the
//! delivery is FAILED and stays visible (`bff check`, the metrics). A sender that dies
//! mid-send leaves its messages to be claimed again when its lease ends; the resend carries
//! the same idempotency key (the email's `Message-ID`, the push's `data.key`).
//!
//! The words are in [`words`], the emails' templates in `templates/notifications/`. Logs say
//! what was sent (the message, its kind and channel), never to whom.

pub mod email;
pub mod mail_dir;
pub mod push;
mod smtp;
pub mod unsubscribe;
pub mod words;

use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;

use crate::config::Config;
use crate::config::notify::Notify;
use crate::db::notifications::deliveries::{self, Claimed, DeliveryState};
use crate::db::notifications::{Channel, PushDevice};
use crate::db::pool::DbPool;
use crate::tasks::Stop;
use email::{Mailer, SendError, compose};
use push::Pusher;
use unsubscribe::Signer;

/// What sends: the configuration, the SMTP client (when email is configured), the push client
/// and the unsubscribe links' signer.
#[derive(Clone)]
pub struct Notifier {
    config: Notify,
    mailer: Option<Mailer>,
    pusher: Pusher,
    /// Signs and checks the one-click unsubscribe links.
    pub signer: Signer,
}

impl Notifier {
    /// Built once per process ([`crate::app`]); an error names the variable at fault.
    pub fn new(config: &Config) -> Result<Notifier, String> {
        let notify = &config.notify;
        let mailer = notify
            .email
            .as_ref()
            .map(|email| Mailer::new(email, notify.concurrency))
            .transpose()?;
        Ok(Notifier {
            mailer,
            pusher: Pusher::new(&notify.expo_push_url, notify.expo_access_token.clone()),
            signer: Signer::new(&config.auth.secret),
            config: notify.clone(),
        })
    }

    /// The directory that catches email instead of sending it (`BFF_SMTP_URL=file://…`).
    pub fn mail_dir(&self) -> Option<&mail_dir::MailDir> {
        self.mailer.as_ref().and_then(Mailer::mail_dir)
    }

    /// How often this process looks for deliveries; `None` when it sends none.
    pub fn poll(&self) -> Option<Duration> {
        self.config.poll
    }

    /// One pass: claims what is due and sends it, until nothing is due. Returns the messages
    /// sent, skipped or failed for good, and those put back for a retry. Up to
    /// `BFF_NOTIFY_CONCURRENCY` messages are in flight at once (each on its own SMTP
    /// connection or push request), and each outcome is recorded as it comes.
    pub async fn pass(&self, conn: &mut AsyncPgConnection) -> diesel::QueryResult<Pass> {
        use futures_util::StreamExt;
        let mut pass = Pass::default();
        loop {
            // Twice as many messages as go out at once (the next wave is ready when a slot
            // frees): each is sent within the SMTP timeout (30 s), so a claim is done within
            // a minute, inside the lease, and no other sender takes one this one still holds.
            let claim = i64::try_from(2 * self.config.concurrency).unwrap_or(16);
            let claimed =
                deliveries::claim(conn, claim, self.config.lease, self.config.batch_window).await?;
            if claimed.is_empty() {
                return Ok(pass);
            }
            // Where each push goes is read first: the sends themselves need no connection.
            let mut messages = Vec::new();
            for rows in claimed.chunk_by(|a, b| a.message_id == b.message_id) {
                let tokens = match rows[0].channel {
                    Channel::Push => PushDevice::of_user(conn, &rows[0].user_id)
                        .await?
                        .into_iter()
                        .map(|d| d.token)
                        .collect(),
                    Channel::Email => Vec::new(),
                };
                messages.push((rows.to_vec(), tokens));
            }
            let mut sending = futures_util::stream::iter(messages)
                .map(|(rows, tokens): (Vec<Claimed>, Vec<String>)| async move {
                    let started = Instant::now();
                    let sent = match rows[0].channel {
                        Channel::Email => (self.email(&rows).await, Vec::new()),
                        Channel::Push => self.push(&rows, tokens).await,
                    };
                    (rows, sent, started)
                })
                .buffer_unordered(self.config.concurrency);
            while let Some((rows, (sent, gone), started)) = sending.next().await {
                let outcome = self.record(conn, &rows, sent, &gone).await?;
                crate::metrics::notification_sent(
                    rows[0].channel.as_db(),
                    outcome.as_db(),
                    started.elapsed(),
                );
                pass.count(outcome);
            }
        }
    }

    /// Records how one message went (and forgets the push tokens the provider called gone).
    async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        rows: &[Claimed],
        result: Delivered,
        gone: &[String],
    ) -> diesel::QueryResult<DeliveryState> {
        if !gone.is_empty() {
            let forgotten = PushDevice::forget(conn, gone).await?;
            tracing::info!(
                forgotten,
                "push tokens the provider no longer knows were forgotten"
            );
        }
        let first = &rows[0];
        let (message, kind, channel) = (first.message_id, first.kind, first.channel);
        match result {
            Delivered::Sent => {
                deliveries::finish(conn, message, DeliveryState::Sent, None).await?;
                tracing::info!(message, %kind, %channel, notifications = rows.len(), "notification sent");
                Ok(DeliveryState::Sent)
            }
            Delivered::Skipped(why) => {
                deliveries::finish(conn, message, DeliveryState::Skipped, Some(why)).await?;
                tracing::debug!(message, %kind, %channel, why, "notification not sent");
                Ok(DeliveryState::Skipped)
            }
            Delivered::Refused(error) => {
                deliveries::finish(conn, message, DeliveryState::Failed, Some(&error)).await?;
                tracing::warn!(message, %kind, %channel, %error, "notification refused for good");
                Ok(DeliveryState::Failed)
            }
            Delivered::Retry(error) => {
                let attempts = u32::try_from(first.attempts).unwrap_or(1);
                let backoff = self.config.backoff(attempts);
                let max = i32::try_from(self.config.max_attempts).unwrap_or(i32::MAX);
                if deliveries::retry(conn, message, &error, backoff, max).await? {
                    tracing::warn!(message, %kind, %channel, attempts, %error, "notification failed after its last attempt");
                    Ok(DeliveryState::Failed)
                } else {
                    tracing::info!(message, %kind, %channel, attempts, retry_in = ?backoff, %error, "notification not sent yet");
                    Ok(DeliveryState::Pending)
                }
            }
        }
    }

    async fn email(&self, rows: &[Claimed]) -> Delivered {
        let (Some(mailer), Some(email)) = (&self.mailer, &self.config.email) else {
            return Delivered::Skipped("email is not configured");
        };
        let first = &rows[0];
        if !first.email_verified && !rows.iter().all(|r| r.billing) {
            return Delivered::Skipped("the address is not verified");
        }
        let composed = compose(rows, &self.config.app_url, &email.public_url, &self.signer);
        match mailer.send(&first.name, &first.email, &composed).await {
            Ok(()) => Delivered::Sent,
            Err(SendError::Transient(error)) => Delivered::Retry(error),
            Err(SendError::Permanent(error)) => Delivered::Refused(error),
        }
    }

    /// Pushes one message to `tokens`; also the tokens the provider called gone.
    async fn push(&self, rows: &[Claimed], tokens: Vec<String>) -> (Delivered, Vec<String>) {
        if tokens.is_empty() {
            return (Delivered::Skipped("no push device"), Vec::new());
        }
        let pushed = match self.pusher.push(rows, &tokens, &self.config.app_url).await {
            Ok(pushed) => pushed,
            Err(error) => return (Delivered::Retry(error), Vec::new()),
        };
        let delivered = if pushed.delivered > 0 {
            Delivered::Sent
        } else if pushed.errors.is_empty() {
            Delivered::Skipped("no push device the provider knows")
        } else {
            Delivered::Retry(pushed.errors.join("; "))
        };
        (delivered, pushed.gone)
    }
}

/// How one message went.
enum Delivered {
    Sent,
    Skipped(&'static str),
    Refused(String),
    Retry(String),
}

/// What a pass did, in messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Sent.
    pub sent: usize,
    /// Not to be sent.
    pub skipped: usize,
    /// Failed for good.
    pub failed: usize,
    /// Put back for a retry.
    pub retrying: usize,
}

impl Pass {
    fn count(&mut self, outcome: DeliveryState) {
        match outcome {
            DeliveryState::Sent => self.sent += 1,
            DeliveryState::Skipped => self.skipped += 1,
            DeliveryState::Failed => self.failed += 1,
            DeliveryState::Pending => self.retrying += 1,
        }
    }
}

/// Sends notifications until the process stops (see the module's documentation): every
/// `poll`, and at once when the live listener hears that one was written (the `pg_notify` of
/// its trigger), so a message leaves milliseconds after its commit.
pub(crate) async fn send(
    pool: DbPool,
    notifier: Notifier,
    hub: std::sync::Arc<crate::live::hub::Hub>,
    poll: Duration,
    mut stop: Stop,
) {
    let mut ticks = tokio::time::interval(poll);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let go = tokio::select! {
            ticked = stop.tick(&mut ticks) => ticked,
            () = hub.next_notification() => true,
        };
        if !go {
            return;
        }
        let Ok(mut conn) = pool.get().await else {
            continue;
        };
        if let Err(error) = notifier.pass(&mut conn).await {
            tracing::warn!(%error, "sending notifications failed");
        }
    }
}
