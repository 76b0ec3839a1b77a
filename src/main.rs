//! The `bff` command: `serve`, `migrate`, `schema`, `dev`.

use std::process::ExitCode;

use bff::config::Config;
use bff::{StartupError, StartupResult};
use secrecy::ExposeSecret;

const USAGE: &str = "\
bff — GraphQL backend-for-frontend for the photo app

Usage:
  bff serve     run the production server (configuration from the environment; see .env.example)
  bff migrate   apply bff's database migrations (Better Auth's tables must exist)
  bff schema    print the GraphQL SDL (schema.graphql is this output)
  bff dev       run locally: a private PostgreSQL, demo data, GraphiQL
  bff service-token [--ttl 1h] [--subject photo-worker]
                print a service token for the photo worker (needs SERVICE_JWT_SECRET);
                --ttl takes s, m, h or d, at most 30d
";

fn main() -> ExitCode {
    // A .env file is a convenience for development; real environments set variables.
    let _ = dotenvy::dotenv();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str);
    let result = match command {
        Some("schema") => {
            print!("{}", bff::graphql::sdl());
            Ok(())
        }
        Some("serve") => runtime().and_then(|rt| rt.block_on(serve())),
        Some("migrate") => runtime().and_then(|rt| rt.block_on(migrate())),
        Some("dev") => runtime().and_then(|rt| {
            bff::telemetry::init();
            rt.block_on(bff::dev::run())
        }),
        Some("service-token") => service_token(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bff: {error}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> StartupResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartupError(format!("cannot start the async runtime: {e}")))
}

async fn serve() -> StartupResult<()> {
    let config = Config::from_env().map_err(|e| StartupError(e.to_string()))?;
    bff::telemetry::init();
    let pool = bff::db::pool_from_config(&config)?;
    if let Err(error) = bff::db::ping(&pool).await {
        tracing::warn!(%error, "the database is not reachable yet; /readyz will say so");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            StartupError(format!(
                "cannot listen on {} (BFF_LISTEN): {e}",
                config.listen
            ))
        })?;
    tracing::info!(
        addr = %config.listen,
        environment = ?config.environment,
        pool_size = config.database_pool_size,
        "bff is serving /graphql"
    );
    bff::http::serve(listener, bff::http::router(&config, pool))
        .await
        .map_err(|e| StartupError(format!("server error: {e}")))
}

/// Longest service-token lifetime `bff service-token` issues.
const MAX_SERVICE_TOKEN_TTL: u64 = 30 * 86_400;

fn service_token(args: &[String]) -> StartupResult<()> {
    let (mut ttl, mut subject) = ("1h".to_owned(), "photo-worker".to_owned());
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| StartupError(format!("{flag} needs a value")))?;
        match flag.as_str() {
            "--ttl" => ttl = value.clone(),
            "--subject" => subject = value.clone(),
            other => return Err(StartupError(format!("unknown option {other}\n{USAGE}"))),
        }
    }
    let seconds = bff::auth::service::parse_ttl(&ttl)
        .filter(|s| *s <= MAX_SERVICE_TOKEN_TTL)
        .ok_or_else(|| {
            StartupError(format!(
                "--ttl {ttl:?}: expected a duration like 90s, 15m, 12h or 7d, at most 30d"
            ))
        })?;
    let secret = std::env::var("SERVICE_JWT_SECRET")
        .ok()
        .filter(|s| s.len() >= 32)
        .ok_or_else(|| {
            StartupError("SERVICE_JWT_SECRET is not set (or shorter than 32 bytes)".into())
        })?;
    let token = bff::auth::service::issue(secret.as_bytes(), &subject, seconds)
        .map_err(|e| StartupError(format!("cannot sign the token: {e}")))?;
    println!("{token}");
    Ok(())
}

async fn migrate() -> StartupResult<()> {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            StartupError("DATABASE_URL is not set: set it to the PostgreSQL URL to migrate".into())
        })?;
    let url = secrecy::SecretString::from(url);
    let ca = std::env::var_os("DATABASE_CA_CERT").map(std::path::PathBuf::from);
    let conn = bff::db::connect_with(url.expose_secret(), ca.as_deref()).await?;
    let applied = bff::db::migrate(conn).await?;
    if applied.is_empty() {
        println!("bff migrate: the database is up to date");
    } else {
        for version in applied {
            println!("bff migrate: applied {version}");
        }
    }
    Ok(())
}
