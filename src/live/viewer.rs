//! A signed-in subscriber: who they are, and their events as a stream that catches up from the
//! database when it falls behind. What a subscription resolver reads from its context.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::hub::{Event, Hub, Subscriber};
use super::listener::{ReloadError, reload_user};
use crate::db::pool::DbPool;

/// How long a subscription waits for the process's listening connection before it fails.
const LISTEN_WAIT: Duration = Duration::from_secs(5);
/// How far before the newest change a subscriber had seen its catch-up reads (commits in
/// flight then, and clocks: the subscription starts from this process's time).
const CATCH_UP_MARGIN_SECONDS: i64 = 5;

/// Why a subscription could not start.
#[derive(Debug, thiserror::Error)]
#[error("live updates are not listening (the database is unreachable)")]
pub struct NotListening;

/// Who a WebSocket connection signed in as, with the operation's subscription to the hub when
/// it was made before the operation ran.
#[derive(Clone)]
pub struct LiveViewer {
    /// The user id.
    pub user_id: String,
    hub: Arc<Hub>,
    pool: DbPool,
    subscriber: Arc<Mutex<Option<Subscriber>>>,
}

impl LiveViewer {
    /// The viewer `user_id`, subscribing through `hub` (and catching up from `pool`).
    pub fn new(user_id: String, hub: Arc<Hub>, pool: DbPool) -> Self {
        LiveViewer {
            user_id,
            hub,
            pool,
            subscriber: Arc::default(),
        }
    }

    /// The pool catch-up reads come from.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// For one operation: subscribed to the hub now, with the listening connection up, so
    /// that everything committed from now on reaches it (the transport answers the client's
    /// next message only after this).
    pub async fn subscribed(&self) -> Result<LiveViewer, NotListening> {
        let subscriber = self.subscribe().await?;
        Ok(LiveViewer {
            subscriber: Arc::new(Mutex::new(Some(subscriber))),
            ..self.clone()
        })
    }

    /// The subscription made by [`LiveViewer::subscribed`], or a new one.
    pub async fn subscribe(&self) -> Result<Subscriber, NotListening> {
        let made = self
            .subscriber
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(subscriber) = made {
            return Ok(subscriber);
        }
        // Subscribed before the listener is known to listen: nothing committed after this
        // returns can be missed.
        let subscriber = self.hub.subscribe(&self.user_id);
        if !self.hub.ready(LISTEN_WAIT).await {
            return Err(NotListening);
        }
        Ok(subscriber)
    }

    /// The subscriber's events that `pick` keeps. A subscriber that fell more than the hub's
    /// buffer behind (a bulk change of many jobs at once, or a client reading slowly) is
    /// caught up from the database: the jobs changed since the newest change it had seen
    /// (less a margin for commits in flight), and the account and billing as they are now; a
    /// failure to reload ends the stream with that error.
    pub fn events<T, P>(
        &self,
        subscriber: Subscriber,
        pick: P,
    ) -> impl Stream<Item = Result<T, ReloadError>> + use<T, P>
    where
        T: Send + 'static,
        P: Fn(&Event) -> Option<T> + Send + 'static,
    {
        let state = Caught {
            subscriber,
            pick,
            pool: self.pool.clone(),
            user_id: self.user_id.clone(),
            seen: Utc::now(),
            queue: VecDeque::new(),
        };
        futures_util::stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            loop {
                let event = match state.queue.pop_front() {
                    Some(event) => event,
                    None => match state.subscriber.next().await {
                        Ok(event) => event,
                        Err(missed) => {
                            tracing::debug!(missed, user = %state.user_id, "catching a subscriber up");
                            let since =
                                state.seen - chrono::Duration::seconds(CATCH_UP_MARGIN_SECONDS);
                            // Boxed: held inline, this rarely taken path's future would be
                            // most of every idle subscription's memory (6.5 KB of 10).
                            let reload = Box::pin(reload_user(&state.pool, &state.user_id, since));
                            match reload.await {
                                Ok(events) => state.queue.extend(events),
                                Err(error) => return Some((Err(error), None)),
                            }
                            continue;
                        }
                    },
                };
                if let Event::Job(job) = &event {
                    state.seen = state.seen.max(job.deleted_at.unwrap_or(job.job.updated_at));
                }
                if let Some(item) = (state.pick)(&event) {
                    return Some((Ok(item), Some(state)));
                }
            }
        })
    }
}

struct Caught<P> {
    subscriber: Subscriber,
    pick: P,
    pool: DbPool,
    user_id: String,
    seen: DateTime<Utc>,
    queue: VecDeque<Event>,
}
