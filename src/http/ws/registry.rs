//! The process's open WebSocket connections: how many (a process limit and a per-viewer
//! limit), who signed each in and with what, and the periodic check that ends a connection
//! whose session was signed out or has expired (every `BFF_WS_SESSION_CHECK_MS`, one statement
//! for every session token, on a pooled connection).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};

use tokio::sync::oneshot;

use crate::auth::Credential;
use crate::config::live::Live;
use crate::db::pool::DbPool;

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
    checking: Once,
}

impl Registry {
    /// An empty registry; its session check starts with the first signed-in connection.
    pub fn new(limits: Live, pool: DbPool) -> Arc<Registry> {
        Arc::new(Registry {
            limits,
            pool,
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            connections: Mutex::default(),
            checking: Once::new(),
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

    /// How many WebSocket connections are open.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Registered>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Closes the connections of users `hub` hears were deleted, at once (spawn it): each such
    /// news checks every connection's credential, as the periodic check does.
    pub async fn close_deleted(self: Arc<Self>, hub: Arc<crate::live::hub::Hub>) {
        let mut gone = hub.on_gone();
        loop {
            match gone.recv().await {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    self.check().await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
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

/// Checks sessions every `session_check` while the registry lives.
async fn check_periodically(registry: Weak<Registry>, period: std::time::Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.reset();
    loop {
        ticks.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        registry.check().await;
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
        registry.checking.call_once(|| {
            tokio::spawn(check_periodically(
                Arc::downgrade(registry),
                registry.limits.session_check,
            ));
        });
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
