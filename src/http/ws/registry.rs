//! The process's open WebSocket connections: how many (a process limit and a per-viewer
//! limit), who signed each in and with what, and the periodic check that ends a connection
//! whose session was signed out or has expired (every `BFF_WS_SESSION_CHECK_MS`, one statement
//! for every session token, on a pooled connection).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::auth::Credential;
use crate::config::live::Live;
use crate::db::pool::DbPool;
use crate::tasks::Stop;

struct Registered {
    user_id: String,
    credential: Credential,
    /// Fired when the credential no longer signs anyone in.
    revoke: Option<oneshot::Sender<()>>,
}

/// The open connections of this process.
pub struct Registry {
    limits: Live,
    pool: DbPool,
    open: AtomicUsize,
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Registered>>,
}

impl Registry {
    /// An empty registry; [`Registry::watch_sessions`] checks its sessions.
    pub fn new(limits: Live, pool: DbPool) -> Arc<Registry> {
        Arc::new(Registry {
            limits,
            pool,
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            connections: Mutex::default(),
        })
    }

    /// The WebSocket limits.
    pub fn limits(&self) -> &Live {
        &self.limits
    }

    /// Counts a new connection against the process's limit; `None` past it.
    pub fn open(self: &Arc<Self>) -> Option<Slot> {
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            registry: self.clone(),
            id: None,
        };
        (open < self.limits.connections).then_some(slot)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Registered>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends the connections whose credential no longer signs anyone in, until the process
    /// stops: every `BFF_WS_SESSION_CHECK_MS`, and at once when `hub` hears a user was deleted
    /// (one check of every connection's credential either way).
    pub async fn watch_sessions(self: Arc<Self>, hub: Arc<crate::live::hub::Hub>, stop: Stop) {
        let mut gone = hub.on_gone();
        let mut ticks = tokio::time::interval(self.limits.session_check);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.reset();
        let stopped = stop.stopped();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                _ = ticks.tick() => {}
                news = gone.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = news {
                        return;
                    }
                }
            }
            self.check().await;
        }
    }

    /// Checks every signed-in connection's credential once, and revokes the dead ones.
    async fn check(&self) {
        let credentials: Vec<(u64, Credential)> = self
            .lock()
            .iter()
            .map(|(id, c)| (*id, c.credential.clone()))
            .collect();
        if credentials.is_empty() {
            return;
        }
        let Ok(mut conn) = self.pool.get().await else {
            tracing::warn!("cannot check WebSocket sessions: no database connection");
            return;
        };
        let only: Vec<Credential> = credentials.iter().map(|(_, c)| c.clone()).collect();
        let valid = match crate::auth::recheck::still_valid(&mut conn, &only).await {
            Ok(valid) => valid,
            Err(error) => {
                tracing::warn!(%error, "cannot check WebSocket sessions");
                return;
            }
        };
        let mut connections = self.lock();
        for ((id, _), valid) in credentials.iter().zip(valid) {
            if !valid && let Some(revoke) = connections.get_mut(id).and_then(|c| c.revoke.take()) {
                let _ = revoke.send(());
            }
        }
    }
}

/// An open connection's place in the count and the registry; leaving frees it.
pub struct Slot {
    registry: Arc<Registry>,
    id: Option<u64>,
}

impl Slot {
    /// Registers the signed-in connection if its viewer has fewer than the per-viewer limit;
    /// the receiver resolves when its credential stops signing anyone in.
    pub fn sign_in(
        &mut self,
        user_id: &str,
        credential: Credential,
    ) -> Option<oneshot::Receiver<()>> {
        let registry = &self.registry;
        let mut connections = registry.lock();
        let of_user = connections
            .values()
            .filter(|c| c.user_id == user_id)
            .count();
        if of_user >= registry.limits.connections_per_viewer {
            return None;
        }
        let (revoke, revoked) = oneshot::channel();
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        connections.insert(
            id,
            Registered {
                user_id: user_id.to_owned(),
                credential,
                revoke: Some(revoke),
            },
        );
        self.id = Some(id);
        Some(revoked)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(id) = self.id {
            self.registry.lock().remove(&id);
        }
    }
}
