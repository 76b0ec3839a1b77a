//! A process's subscribers, by user: each user's events go to that user's subscribers only.
//! The hub knows no transport and no database; the listener publishes into it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::db::credits::CreditAccount;
use crate::db::live::JobState;
use crate::db::notifications::Notification;
use crate::db::subscriptions::BillingState;

/// How many events a user's subscribers may fall behind before they are caught up by reloading
/// (a bulk change, or a client reading slowly) rather than event by event.
const EVENTS_BUFFERED: usize = 64;

/// What a subscriber receives: an object, reloaded with its owner after a change.
#[derive(Clone, Debug)]
pub enum Event {
    /// A photo job, or its last state with `deleted_at` once deleted.
    Job(Arc<JobState>),
    /// The credit account.
    Credits(Arc<CreditAccount>),
    /// The billing subscription.
    Billing(Arc<BillingState>),
    /// A notification, as written.
    Notification(Arc<Notification>),
    /// The user's version moved to this (a statement changed what they read; see
    /// `crate::db::changes`).
    Logged(i64),
}

/// Starts the listening connection that publishes into a hub (see [`super::listener`]).
type Starter = Box<dyn Fn(Arc<Hub>) + Send + Sync>;

/// One process's subscribers, and whether its listening connection is up.
pub struct Hub {
    users: Mutex<HashMap<String, broadcast::Sender<Event>>>,
    started: Once,
    start: Starter,
    listening: watch::Sender<bool>,
    gone: broadcast::Sender<String>,
    /// Woken when a notification is written (anyone's): the sender's cue.
    written: tokio::sync::Notify,
}

impl Hub {
    /// A hub whose listener `start` spawns on first use.
    pub fn new(start: impl Fn(Arc<Hub>) + Send + Sync + 'static) -> Arc<Hub> {
        Arc::new(Hub {
            users: Mutex::default(),
            started: Once::new(),
            start: Box::new(start),
            listening: watch::Sender::new(false),
            gone: broadcast::channel(EVENTS_BUFFERED).0,
            written: tokio::sync::Notify::new(),
        })
    }

    /// Starts the listener (once) and waits until it listens, at most `wait`.
    pub async fn ready(self: &Arc<Self>, wait: Duration) -> bool {
        self.started.call_once(|| (self.start)(self.clone()));
        let mut listening = self.listening.subscribe();
        tokio::time::timeout(wait, listening.wait_for(|l| *l))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Tells the hub whether its listener listens (the listener calls this).
    pub fn set_listening(&self, listening: bool) {
        self.listening.send_replace(listening);
    }

    /// Subscribes to `user_id`'s events.
    pub fn subscribe(self: &Arc<Self>, user_id: &str) -> Subscriber {
        let mut users = self.lock();
        let receiver = users
            .entry(user_id.to_owned())
            .or_insert_with(|| broadcast::channel(EVENTS_BUFFERED).0)
            .subscribe();
        Subscriber {
            receiver: Some(receiver),
            hub: self.clone(),
            user_id: user_id.to_owned(),
        }
    }

    /// The users with subscribers in this process.
    pub fn subscribed_users(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Whether `user_id` has subscribers in this process.
    pub fn has_subscribers(&self, user_id: &str) -> bool {
        self.lock().contains_key(user_id)
    }

    /// Says that `user_id` was deleted (the listener calls this), to whoever listens for it
    /// (the WebSocket registry, which closes their connections).
    pub fn gone(&self, user_id: &str) {
        let _ = self.gone.send(user_id.to_owned());
    }

    /// Says that notifications were written, for anyone (the listener calls this).
    pub fn notification_written(&self) {
        self.written.notify_one();
    }

    /// Resolves at the next [`Hub::notification_written`] (or at once if one came since the
    /// last call), starting the listener on the first call: the notification sender's cue,
    /// so a delivery leaves within milliseconds of its commit rather than at the next poll.
    pub async fn next_notification(self: &Arc<Self>) {
        self.started.call_once(|| (self.start)(self.clone()));
        self.written.notified().await;
    }

    /// Hears of deleted users (see [`Hub::gone`]).
    pub fn on_gone(&self) -> broadcast::Receiver<String> {
        self.gone.subscribe()
    }

    /// Hands `event` to `user_id`'s subscribers.
    pub fn publish(&self, user_id: &str, event: Event) {
        if let Some(sender) = self.lock().get(user_id) {
            // No receiver left is not an error: it is leaving.
            let _ = sender.send(event);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Event>>> {
        self.users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One subscription's view of its user's events; leaving removes the user from the hub when
/// they were the last.
pub struct Subscriber {
    receiver: Option<broadcast::Receiver<Event>>,
    hub: Arc<Hub>,
    user_id: String,
}

impl Subscriber {
    /// The next event; `Err(n)` when `n` events were missed because this subscriber was not
    /// read in time.
    pub async fn next(&mut self) -> Result<Event, u64> {
        let Some(receiver) = self.receiver.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match receiver.recv().await {
                Ok(event) => return Ok(event),
                Err(broadcast::error::RecvError::Lagged(n)) => return Err(n),
                // The hub keeps a user's sender while any receiver lives: unreachable.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut users = self.hub.lock();
        if users
            .get(&self.user_id)
            .is_some_and(|s| s.receiver_count() == 0)
        {
            users.remove(&self.user_id);
        }
    }
}
