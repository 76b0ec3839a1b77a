//! `bff dev`: one command for a newcomer. Without `DATABASE_URL` it runs a private PostgreSQL
//! cluster under `.bff/postgres`, creates Better Auth's tables as Better Auth would, migrates,
//! seeds a demo user, prints credentials, and serves GraphiQL.

pub mod postgres;
pub mod seed;

use std::path::Path;

use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::ExposeSecret;

use crate::config::{Config, Environment};
use crate::{StartupError, StartupResult};

/// Database `bff dev` uses on its private cluster.
pub const DEV_DATABASE: &str = "bff";
/// Better Auth secret used when `BETTER_AUTH_SECRET` is unset (development only).
pub const DEV_SECRET: &str = "bff-dev-secret-not-for-production-0123456789";

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
/// migrations, and the demo data if absent.
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
    Ok(())
}

/// Runs `bff dev` until Ctrl-C.
pub async fn run() -> StartupResult<()> {
    let cluster = match std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()) {
        Some(_) => None,
        None => {
            let cluster =
                postgres::Cluster::ensure(Path::new(".bff/postgres"), postgres::Durability::Safe)?;
            create_database(&cluster.url("postgres"), DEV_DATABASE).await?;
            Some(cluster)
        }
    };
    let result = serve(cluster.as_ref().map(|c| c.url(DEV_DATABASE))).await;
    if let Some(cluster) = &cluster {
        cluster.stop_if_started_here()?;
        println!(
            "Stopped the private PostgreSQL cluster ({}).",
            cluster.root().display()
        );
    }
    result
}

async fn serve(cluster_url: Option<String>) -> StartupResult<()> {
    let config = Config::from_lookup(|name| {
        let value = std::env::var(name).ok().filter(|v| !v.is_empty());
        match name {
            "BFF_ENV" => Some("development".to_owned()),
            "DATABASE_URL" => cluster_url.clone().or(value),
            "BETTER_AUTH_SECRET" => value.or_else(|| Some(DEV_SECRET.to_owned())),
            "BETTER_AUTH_URL" => value.or_else(|| Some("http://localhost:5173".to_owned())),
            // The SvelteKit example's dev server (scripts/example).
            "CORS_ALLOWED_ORIGINS" => value.or_else(|| Some("http://localhost:5173".to_owned())),
            _ => value,
        }
    })
    .map_err(|e| StartupError(e.to_string()))?;
    debug_assert_eq!(config.environment, Environment::Development);
    let database_url = config.database_url.expose_secret().to_owned();
    prepare(&database_url).await?;

    let mut conn = crate::db::connect(&database_url).await?;
    let token = seed::demo_session(&mut conn)
        .await
        .map_err(|e| StartupError(format!("cannot create the demo session: {e}")))?;
    drop(conn);

    let secret = config.better_auth_secret.expose_secret();
    let cookie = crate::auth::cookie_value(&token, secret);
    let bearer = crate::auth::signed_token(&token, secret);
    let pool = crate::db::pool_from_config(&config)?;
    let listener = crate::http::bind(&config, &pool).await?;
    let app = crate::http::router(&config, pool);
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
         Ctrl-C stops the server{and_cluster}.\n",
        email = seed::DEMO_EMAIL,
        fragment = percent_encoding::utf8_percent_encode(
            &headers.to_string(),
            percent_encoding::NON_ALPHANUMERIC
        ),
        name = config.session_cookie_name,
        and_cluster = if cluster_url.is_some() {
            " and the private PostgreSQL cluster"
        } else {
            ""
        },
    );
    crate::http::serve(listener, app, &config)
        .await
        .map_err(|e| StartupError(format!("server error: {e}")))
}
