//! The application, put together in one place: [`App::new`] builds every client once (the
//! pool is given; Redis, Stripe, photo storage), the schema, the pipeline and live updates'
//! hub, and [`App::start`] starts every background task, which [`App::stop`] stops. The routes
//! ([`crate::http::router`]) are handed the built `App`; nothing below constructs a client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::Config;
use crate::db::connect::ConnectOptions;
use crate::db::migrate::{ServingCheck, check_serving};
use crate::db::pool::DbPool;
use crate::error::{StartupError, StartupResult};
use crate::http::export_limits::Exports;
use crate::http::ws::registry::Registry;
use crate::live::hub::Hub;
use crate::notify::Notifier;
use crate::pipeline::Pipeline;
use crate::pipeline::documents::Documents;
use crate::redis::{Redis, Role};
use crate::storage::Photos;
use crate::stripe::StripeClient;
use crate::tasks::{Stopped, Tasks};

/// Everything the server holds for its lifetime, built once.
pub struct App {
    /// The configuration it was built from.
    pub config: Config,
    /// The database pool.
    pub pool: DbPool,
    /// The request pipeline every GraphQL operation goes through.
    pub pipeline: Pipeline,
    /// Live updates: this process's subscribers and listening connection.
    pub hub: Arc<Hub>,
    /// Open WebSocket connections and their limits.
    pub connections: Arc<Registry>,
    /// The account export's limits.
    pub exports: Arc<Exports>,
    /// The Stripe API client (it refuses calls when `STRIPE_SECRET_KEY` is unset).
    pub stripe: StripeClient,
    /// Photo storage, when configured.
    pub photos: Photos,
    /// Sends notifications' emails and pushes, and signs their unsubscribe links.
    pub notifier: Notifier,
    /// How the Stripe sync and the live listener connect (outside the pool).
    options: ConnectOptions,
    tasks: Tasks,
    /// Whether the database's schema is still to be checked (it was unreachable at start).
    check_schema: bool,
    /// Whether [`App::start`] ran.
    started: AtomicBool,
}

/// How long the background tasks have to finish the pass they are in once serving has stopped
/// (at most the shutdown timeout): within the grace period a load balancer gives.
pub const TASKS_GRACE: Duration = Duration::from_secs(5);

impl App {
    /// Opens the pool of `config` and checks the database's schema first: a database whose
    /// migrations are behind (or ahead of) this binary stops start-up; an unreachable one is
    /// checked again once it answers (see [`App::start`]).
    pub async fn open(config: &Config) -> StartupResult<Arc<App>> {
        let pool = crate::db::pool_from_config(&config.database)?;
        let check_schema = match check_serving(&pool).await {
            Ok(()) => {
                write_settings(&pool, config).await;
                false
            }
            Err(ServingCheck::Refused(message)) => return Err(StartupError(message)),
            Err(ServingCheck::Unreachable(error)) => {
                tracing::warn!(%error, "the database is not reachable yet; /readyz will say so");
                true
            }
        };
        App::build(config, pool, check_schema).map(Arc::new)
    }

    /// The application of `config` over `pool`, as [`App::open`] builds it but without the
    /// schema check (a test's database is migrated); nothing started.
    pub fn new(config: &Config, pool: DbPool) -> StartupResult<Arc<App>> {
        App::build(config, pool, false).map(Arc::new)
    }

    /// The application of `config` over `pool`: clients, schema, pipeline; `check_schema` when
    /// the database's migrations are still to be checked. Fails when the trusted documents
    /// manifest cannot be read or a client's settings are unusable (the error names the
    /// variable).
    fn build(config: &Config, pool: DbPool, check_schema: bool) -> StartupResult<App> {
        let redis = match config.redis.clone() {
            Some(r) => Some(Arc::new(Redis::new(r, Role::Limits).map_err(StartupError)?)),
            None => None,
        };
        let documents = match &config.limits.trusted_documents {
            Some(path) => Documents::trusted(path)
                .map_err(|e| StartupError(format!("BFF_TRUSTED_DOCUMENTS: {e}")))?,
            None => Documents::open(),
        };
        let documents = match config.apq_redis.clone() {
            Some(r) => documents.shared_through(Some(Arc::new(
                Redis::new(r, Role::Documents).map_err(StartupError)?,
            ))),
            None => documents,
        };
        let stripe = StripeClient::new(&config.stripe);
        let photos = Photos::new(&config.storage).map_err(StartupError)?;
        let notifier = Notifier::new(config).map_err(StartupError)?;
        let schemas = crate::graphql::served(config, &photos, &stripe);
        let admin = crate::admin::served(config, &stripe);
        let pipeline = Pipeline::new(
            config,
            pool.clone(),
            schemas,
            admin,
            documents,
            redis.clone(),
        );
        let tasks = Tasks::default();
        let listener = tasks.spawner();
        let options = crate::db::pool::options(&config.database)?;
        let listening = options.clone();
        let progress_interval = config.live.progress_interval;
        // The hub starts its listening connection when it has its first subscriber.
        let hub = Hub::new(move |hub| {
            listener.spawn_cancellable(
                "live listener",
                crate::live::listener::listen(hub, listening.clone(), progress_interval),
            );
        });
        Ok(App {
            connections: Registry::new(config.live, pool.clone()),
            exports: Arc::new(Exports::new(
                redis,
                config.database.pool_size,
                config.export,
            )),
            config: config.clone(),
            pool,
            pipeline,
            hub,
            stripe,
            photos,
            notifier,
            options,
            tasks,
            check_schema,
            started: AtomicBool::new(false),
        })
    }

    /// Starts every background task: the lease sweeper, the Stripe clean-ups and sync (with a
    /// Stripe key), the storage sweeper (with storage), the WebSocket session check. The live
    /// listener starts with the first subscriber; the metrics listener with [`App::serve_metrics`].
    /// Starts them once: a second call does nothing.
    pub fn start(&self) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let (config, pool, tasks) = (&self.config, &self.pool, &self.tasks);
        if self.check_schema {
            tasks.spawn("schema check", |stop| recheck_schema(pool.clone(), stop));
        }
        tasks.spawn("lease sweeper", |stop| {
            crate::sweeper::sweep_leases(pool.clone(), config.jobs, stop)
        });
        tasks.spawn("change log pruner", |stop| {
            crate::sweeper::prune_changes(pool.clone(), config.live.changes_retention_hours, stop)
        });
        if config.stripe.secret_key.is_some() {
            tasks.spawn("Stripe clean-ups", |stop| {
                crate::sweeper::sweep_account_cleanups(pool.clone(), self.stripe.clone(), stop)
            });
        }
        match (&config.stripe.secret_key, config.stripe.sync_interval) {
            (Some(_), Some(interval)) => tasks.spawn("Stripe sync", |stop| {
                crate::stripe::sync::periodic(
                    self.options.clone(),
                    self.stripe.clone(),
                    interval,
                    stop,
                )
            }),
            (None, Some(_)) => {
                tracing::info!("the Stripe sync is off: STRIPE_SECRET_KEY is not set");
            }
            _ => {}
        }
        match self.photos.store() {
            Some(store) => {
                tracing::info!(store = %store.describe(), "photo uploads are on");
                let (store, unattached) = (store.clone(), config.storage.unattached_lifetime);
                tasks.spawn("storage sweeper", |stop| {
                    crate::sweeper::sweep_storage(pool.clone(), store, unattached, stop)
                });
            }
            None => tracing::warn!(
                "photo uploads are off (BFF_STORAGE_URL is unset): jobs take a bare photoCount"
            ),
        }
        if let Some(poll) = self.notifier.poll() {
            let (notifier, hub) = (self.notifier.clone(), self.hub.clone());
            tasks.spawn("notification sender", |stop| {
                crate::notify::send(pool.clone(), notifier, hub, poll, stop)
            });
        }
        let (connections, hub) = (self.connections.clone(), self.hub.clone());
        tasks.spawn("WebSocket session check", |stop| {
            connections.watch_sessions(hub, stop)
        });
    }

    /// Serves `/metrics` on `listener` (`BFF_METRICS_LISTEN`) until the application stops.
    pub fn serve_metrics(&self, listener: tokio::net::TcpListener) {
        let pool = self.pool.clone();
        self.tasks.spawn_cancellable(
            "metrics listener",
            crate::http::metrics::serve(listener, pool),
        );
    }

    /// How many background tasks are running.
    pub fn running_tasks(&self) -> usize {
        self.tasks.running()
    }

    /// Stops every background task: each finishes the pass it is in, for at most
    /// [`TASKS_GRACE`] (or the shutdown timeout, when shorter); what is left is aborted.
    pub async fn stop(&self) -> Stopped {
        let grace = TASKS_GRACE.min(self.config.server.timeouts.shutdown);
        let stopped = self.tasks.stop(grace).await;
        tracing::info!(
            finished = stopped.finished,
            aborted = stopped.aborted,
            "background tasks stopped"
        );
        stopped
    }
}

/// Checks the database's schema once it answers; a refusal then stops the process.
/// Writes the settings the database's triggers read (the low-credits threshold).
async fn write_settings(pool: &DbPool, config: &Config) {
    let cents = config.notify.credits_low_cents;
    let written = match pool.get().await {
        Ok(mut conn) => crate::db::notifications::set_credits_low(&mut *conn, cents)
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = written {
        tracing::warn!(%error, "could not write BFF_NOTIFY_CREDITS_LOW_CENTS to the database");
    }
}

async fn recheck_schema(pool: DbPool, mut stop: crate::tasks::Stop) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.reset();
    while stop.tick(&mut ticks).await {
        match check_serving(&pool).await {
            Ok(()) => return,
            Err(ServingCheck::Unreachable(_)) => continue,
            Err(ServingCheck::Refused(message)) => {
                tracing::error!("{message}");
                eprintln!("bff: {message}");
                std::process::exit(1);
            }
        }
    }
}
