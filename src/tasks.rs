//! The process's background tasks, in one set: what [`crate::app`] starts (the sweepers, the
//! Stripe sync, the live listener, the WebSocket session check, the metrics listener), and how
//! they stop. A task that loops waits on [`Stop::tick`] between passes, so a stop lets a pass in
//! progress finish (a sweep's transaction commits or rolls back whole); whatever is still running
//! after the grace period is aborted. Dropping the last handle aborts them all.

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// The set of background tasks (cheap to clone: every clone spawns into the same set).
#[derive(Clone)]
pub struct Tasks {
    inner: Arc<Inner>,
}

struct Inner {
    set: Mutex<JoinSet<()>>,
    stop: watch::Sender<bool>,
}

/// How a stop went: the tasks that ended on their own and those aborted past the grace period.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Ended within the grace period.
    pub finished: usize,
    /// Still running at its end, aborted.
    pub aborted: usize,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            inner: Arc::new(Inner {
                set: Mutex::new(JoinSet::new()),
                stop: watch::Sender::new(false),
            }),
        }
    }
}

impl Tasks {
    /// Starts `task`, named for the logs; it is given the [`Stop`] it should watch. Once the
    /// set is stopping, nothing new starts.
    pub fn spawn<F, T>(&self, name: &'static str, task: T)
    where
        T: FnOnce(Stop) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        if *self.inner.stop.borrow() {
            return;
        }
        let future = task(Stop(self.inner.stop.subscribe()));
        tracing::debug!(task = name, "starting");
        self.lock().spawn(async move {
            future.await;
            tracing::debug!(task = name, "stopped");
        });
    }

    /// Starts `task`, which has no natural point to stop at (it holds no transaction): a stop
    /// ends it at its next await.
    pub fn spawn_cancellable<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, |stop| async move {
            tokio::select! {
                () = task => {}
                () = stop.stopped() => {}
            }
        });
    }

    /// A handle that starts tasks in this set later (a task started on first use) without
    /// keeping the set alive.
    pub fn spawner(&self) -> Spawner {
        Spawner(Arc::downgrade(&self.inner))
    }

    /// How many tasks are running (those that ended on their own are let go first).
    pub fn running(&self) -> usize {
        let mut set = self.lock();
        while set.try_join_next().is_some() {}
        set.len()
    }

    /// Tells every task to stop, waits up to `grace` for them, and aborts the rest.
    pub async fn stop(&self, grace: Duration) -> Stopped {
        self.inner.stop.send_replace(true);
        let mut set = std::mem::take(&mut *self.lock());
        let mut stopped = Stopped::default();
        let deadline = tokio::time::Instant::now() + grace;
        while !set.is_empty() {
            match tokio::time::timeout_at(deadline, set.join_next()).await {
                Ok(Some(_)) => stopped.finished += 1,
                Ok(None) => break,
                Err(_) => {
                    stopped.aborted = set.len();
                    set.shutdown().await;
                }
            }
        }
        stopped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        self.inner
            .set
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Starts tasks in a [`Tasks`] set while it exists ([`Tasks::spawner`]).
pub struct Spawner(Weak<Inner>);

impl Spawner {
    /// [`Tasks::spawn_cancellable`], when the set still exists.
    pub fn spawn_cancellable<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Some(inner) = self.0.upgrade() {
            Tasks { inner }.spawn_cancellable(name, task);
        }
    }
}

/// What a background task watches to know the process is stopping.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Resolves once the process is stopping.
    pub async fn stopped(mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    /// Waits for `ticks`' next tick; `false` instead when the process is stopping (then the
    /// task returns).
    pub async fn tick(&mut self, ticks: &mut tokio::time::Interval) -> bool {
        if *self.0.borrow() {
            return false;
        }
        let ticked = tokio::select! {
            _ = ticks.tick() => true,
            _ = self.0.wait_for(|stopping| *stopping) => false,
        };
        ticked && !*self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_looping_task_finishes_its_pass_and_a_stuck_one_is_aborted() {
        let tasks = Tasks::default();
        let (passes, mut seen) = watch::channel(0u32);
        tasks.spawn("loops", move |mut stop| async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(5));
            while stop.tick(&mut ticks).await {
                // A pass that takes a while: the stop waits for it.
                tokio::time::sleep(Duration::from_millis(20)).await;
                passes.send_modify(|n| *n += 1);
            }
        });
        tasks.spawn("stuck", |_| std::future::pending());
        tasks.spawn_cancellable("listener", std::future::pending());
        assert_eq!(tasks.running(), 3);
        seen.wait_for(|n| *n >= 2).await.unwrap();
        let stopped = tasks.stop(Duration::from_millis(300)).await;
        assert_eq!(
            stopped,
            Stopped {
                finished: 2,
                aborted: 1
            }
        );
        assert_eq!(tasks.running(), 0);
        // Stopping: nothing new starts.
        tasks.spawn("late", |_| std::future::pending());
        assert_eq!(tasks.running(), 0);
    }
}
