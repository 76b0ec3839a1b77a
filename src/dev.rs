//! `bff dev`: one command for a newcomer. Without `DATABASE_URL` it runs a private PostgreSQL
//! cluster under `.bff/postgres`, creates Better Auth's tables as Better Auth would, migrates,
//! seeds a demo user, prints credentials, and serves GraphiQL. Without `BFF_STORAGE_URL` it
//! runs an S3-compatible store for photos under `.bff/storage`.

pub mod postgres;
pub mod seed;

use std::path::Path;

use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::ExposeSecret;

use crate::app::App;
use crate::config::{Config, Environment};
use crate::error::{StartupError, StartupResult};
use crate::storage::embedded::{self, EmbeddedStore};

/// Where `bff dev`'s embedded object store keeps its objects.
pub const STORAGE_DIR: &str = ".bff/storage";
/// Database `bff dev` uses on its private cluster.
pub const DEV_DATABASE: &str = "bff";
/// Better Auth secret used when `BETTER_AUTH_SECRET` is unset (development only).
pub const DEV_SECRET: &str = crate::config::dev::SECRET;

/// Creates database `name` on the server behind `admin_url` unless it exists.
pub async fn create_database(admin_url: &str, name: &str) -> StartupResult<()> {
    let mut conn = crate::db::connect(admin_url).await?;
    create_database_on(&mut conn, name, None).await
}

/// `CREATE DATABASE name [TEMPLATE template]`, ignoring "already exists".
pub async fn create_database_on(
    conn: &mut AsyncPgConnection,
    name: &str,
    template: Option<&str>,
) -> StartupResult<()> {
    let sql = match template {
        Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
        None => format!("CREATE DATABASE \"{name}\""),
    };
    match diesel::sql_query(sql).execute(conn).await {
        Ok(_) => Ok(()),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("already exists") =>
        {
            Ok(())
        }
        Err(e) => Err(StartupError(format!("cannot create database {name}: {e}"))),
    }
}

/// Brings a database up to date for development: Better Auth's tables if missing, our
/// migrations, and the demo data and the demo user's password if absent.
pub async fn prepare(database_url: &str) -> StartupResult<()> {
    let mut conn = crate::db::connect(database_url).await?;
    let db_err =
        |e: diesel::result::Error| StartupError(format!("cannot prepare the database: {e}"));
    if !crate::db::better_auth_tables_exist(&mut conn)
        .await
        .map_err(db_err)?
    {
        crate::db::create_better_auth_tables(&mut conn)
            .await
            .map_err(db_err)?;
    }
    crate::db::migrate(conn).await?;
    let mut conn = crate::db::connect(database_url).await?;
    seed::demo(&mut conn).await.map_err(db_err)?;
    seed::demo_password(&mut conn).await.map_err(db_err)?;
    Ok(())
}

/// SIGINT and SIGTERM, listened for from the first moment of `bff dev`: an interrupt during
/// start-up (while PostgreSQL starts, while migrating) stops it as cleanly as one while
/// serving.
struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    fn register() -> StartupResult<Stop> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let register = |kind| {
                signal(kind).map_err(|e| StartupError(format!("cannot listen for signals: {e}")))
            };
            Ok(Stop {
                interrupt: register(SignalKind::interrupt())?,
                terminate: register(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Stop {})
    }

    /// Resolves at the next SIGINT or SIGTERM.
    async fn wait(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}

/// Runs `bff dev` until Ctrl-C (or SIGTERM), at any point of its start-up too; a PostgreSQL
/// cluster it started is stopped however it ends.
pub async fn run() -> StartupResult<()> {
    let mut stop = Stop::register()?;
    let cluster = if crate::config::dev::has_database_url() {
        None
    } else {
        // Starting PostgreSQL blocks (initdb, pg_ctl): it runs on its own thread, and an
        // interrupt meanwhile waits for it to finish so that it can be stopped.
        let starting = tokio::task::spawn_blocking(|| {
            postgres::Cluster::ensure(Path::new(".bff/postgres"), postgres::Durability::Safe)
        });
        tokio::pin!(starting);
        let mut interrupted = false;
        let started = tokio::select! {
            started = &mut starting => started,
            () = stop.wait() => {
                interrupted = true;
                println!("Interrupted: stopping once PostgreSQL has finished starting…");
                (&mut starting).await
            }
        };
        let cluster =
            started.map_err(|e| StartupError(format!("starting PostgreSQL failed: {e}")))??;
        if interrupted {
            return stop_cluster(&cluster);
        }
        Some(cluster)
    };
    let result = match &cluster {
        Some(cluster) => {
            let admin = cluster.url("postgres");
            let url = cluster.url(DEV_DATABASE);
            tokio::select! {
                created = create_database(&admin, DEV_DATABASE) => match created {
                    Ok(()) => serve(Some(url), &mut stop).await,
                    Err(error) => Err(error),
                },
                () = stop.wait() => Ok(()),
            }
        }
        None => serve(None, &mut stop).await,
    };
    match &cluster {
        Some(cluster) => stop_cluster(cluster).and(result),
        None => result,
    }
}

fn stop_cluster(cluster: &postgres::Cluster) -> StartupResult<()> {
    cluster.stop_if_started_here()?;
    println!(
        "Stopped the private PostgreSQL cluster ({}).",
        cluster.root().display()
    );
    Ok(())
}

/// Prepares the database and serves until `stop`; an interrupt during preparation ends it.
async fn serve(cluster_url: Option<String>, stop: &mut Stop) -> StartupResult<()> {
    // Photos go to an S3-compatible store on loopback, under .bff/storage, unless a bucket is
    // configured: the same presigned URLs and checks as in production.
    // A directory it cannot write (a read-only container) turns photos off, said in the banner.
    let mut storage_off = None;
    let embedded = if crate::config::dev::has_storage_url() {
        None
    } else {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        match EmbeddedStore::start(Path::new(STORAGE_DIR), embedded::BUCKET, addr).await {
            Ok(store) => Some(store),
            Err(error) => {
                storage_off = Some(format!(
                    "off: the embedded store cannot use {STORAGE_DIR} ({error}); run bff dev \
                     from a writable directory, or set BFF_STORAGE_URL"
                ));
                None
            }
        }
    };
    let storage_endpoint = embedded.as_ref().map(EmbeddedStore::endpoint);
    let config = Config::read(crate::config::dev::env(
        cluster_url.clone(),
        storage_endpoint.clone(),
    ))
    .map_err(|e| StartupError(e.to_string()))?;
    let ready = tokio::select! {
        ready = start(&config) => ready?,
        () = stop.wait() => return Ok(()),
    };
    let (listener, app, token) = ready;
    let secret = config.auth.secret.expose_secret();
    let cookie = crate::auth::cookie_value(&token, secret);
    let bearer = crate::auth::signed_token(&token, secret);
    let addr = listener
        .local_addr()
        .map_err(|e| StartupError(e.to_string()))?;
    let headers = serde_json::json!({ "Authorization": format!("Bearer {bearer}") });
    println!(
        "\nbff dev is serving http://{addr}/graphql  (demo user: {email})\n\n\
         GraphiQL, signed in as the demo user:\n  http://{addr}/graphiql#headers={fragment}\n\n\
         Cookie header:\n  Cookie: {name}={cookie}\n\n\
         Bearer token:\n  Authorization: Bearer {bearer}\n\n\
         Try: curl -s http://{addr}/graphql -H 'Content-Type: application/json' \\\n    \
         -H 'Cookie: {name}={cookie}' \\\n    \
         -d '{{\"query\":\"{{ viewer {{ email credits {{ balance }} }} }}\"}}'\n\n\
         Photos: {storage}\n\n\
         Email: {mail}\n\n\
         The example app (scripts/example) signs in as {email} with the password {password}.\n\n\
         Ctrl-C stops the server{and_cluster}.\n",
        storage = match (&storage_endpoint, &config.storage.bucket) {
            (Some(endpoint), _) =>
                format!("kept under {STORAGE_DIR}, served by an S3-compatible store at {endpoint}"),
            (None, Some(bucket)) => format!("in s3://{}/{}", bucket.name, bucket.prefix),
            (None, None) => storage_off.unwrap_or_else(|| "off".to_owned()),
        },
        mail = match app.notifier.mail_dir() {
            Some(dir) => format!(
                "caught under {}, nothing leaves this machine: read it at http://{addr}/dev/mail",
                dir.path().display()
            ),
            None if config.notify.email.is_some() => "sent through BFF_SMTP_URL".to_owned(),
            None => "off".to_owned(),
        },
        email = seed::DEMO_EMAIL,
        password = seed::DEMO_PASSWORD,
        fragment = percent_encoding::utf8_percent_encode(
            &headers.to_string(),
            percent_encoding::NON_ALPHANUMERIC
        ),
        name = config.auth.session_cookie,
        and_cluster = if cluster_url.is_some() {
            " and the private PostgreSQL cluster"
        } else {
            ""
        },
    );
    app.start();
    let served = crate::http::server::serve_until(
        listener,
        crate::http::router(&app),
        config.server.timeouts,
        stop.wait(),
    )
    .await;
    app.stop().await;
    served.map_err(|e| StartupError(format!("server error: {e}")))
}

/// Migrates and seeds, then binds: the listener, the app, and the demo user's session token.
async fn start(
    config: &Config,
) -> StartupResult<(tokio::net::TcpListener, std::sync::Arc<App>, String)> {
    debug_assert_eq!(config.server.environment, Environment::Development);
    let database_url = config.database.url.expose_secret().to_owned();
    prepare(&database_url).await?;
    let mut conn = crate::db::connect(&database_url).await?;
    let token = seed::demo_session(&mut conn)
        .await
        .map_err(|e| StartupError(format!("cannot create the demo session: {e}")))?;
    // Migrated just now, by this binary: no schema check to make.
    let app = App::new(config, crate::db::pool_from_config(&config.database)?)?;
    if let Some(store) = app.photos.store() {
        seed::demo_photos(&mut conn, store)
            .await
            .map_err(|e| StartupError(format!("cannot store the demo photos: {e}")))?;
    }
    drop(conn);
    let listener = crate::http::listen(&app).await?;
    Ok((listener, app, token))
}
