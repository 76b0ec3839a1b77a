//! The `bff` command: `serve`, `migrate`, `check`, `healthcheck`, `schema`, `dev`,
//! `service-token`, `stripe sync`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use bff::config::{Config, ConfigErrors, Env};
use bff::error::{StartupError, StartupResult};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

// A GraphQL answer is many small allocations; mimalloc (its version 2, which used less CPU
// here than 3) serves them with less CPU than glibc's allocator: the dashboard went from 0.47
// to 0.33 ms of CPU per request, peak RSS from 19 to 31 MB (scripts/bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// GraphQL backend-for-frontend for the photo app: serves the Better Auth viewer's billing,
/// usage, credits and photo jobs.
#[derive(Parser)]
#[command(
    name = "bff",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("BFF_COMMIT"), ")"),
    after_help = environment_help(),
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the production server (configuration from the environment).
    #[command(after_help = environment_help())]
    Serve,
    /// Apply bff's database migrations (Better Auth's tables must exist first).
    #[command(
        after_help = "Reads DATABASE_URL (libpq's meaning, sslmode included) and DATABASE_CA_CERT."
    )]
    Migrate,
    /// Check configuration, database, TLS, Better Auth's tables, migrations, Stripe and the
    /// worker secret; exits non-zero when something is wrong.
    #[command(after_help = environment_help())]
    Check,
    /// Probe the server on BFF_LISTEN: exit 0 when GET /healthz answers 200 within 2 s
    /// (the container's HEALTHCHECK; the runtime image has no curl).
    Healthcheck,
    /// Print the GraphQL SDL (schema.graphql is this output).
    Schema,
    /// Run locally: a private PostgreSQL (unless DATABASE_URL is set), demo data, GraphiQL.
    Dev,
    /// Print a service token for the photo worker (needs SERVICE_JWT_SECRET).
    ServiceToken {
        /// Lifetime: a number with s, m, h or d, at most 30d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: u64,
        /// The token's subject (who the worker is, in logs).
        #[arg(long, default_value = "photo-worker")]
        subject: String,
    },
    /// Stripe operations.
    Stripe {
        #[command(subcommand)]
        command: StripeCommand,
    },
    /// The administration's roles (Better Auth's user.role), audited with the command line as
    /// the actor.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Give a person a role, e.g. the first admin: `bff admin grant-role you@example.com admin`.
    #[command(after_help = "Reads DATABASE_URL and DATABASE_CA_CERT.")]
    GrantRole {
        /// The person's email.
        email: String,
        /// The role (BFF_ADMIN_ROLES, BFF_SUPPORT_ROLES: admin and support by default).
        role: String,
    },
    /// Take a role from a person.
    #[command(after_help = "Reads DATABASE_URL and DATABASE_CA_CERT.")]
    RevokeRole {
        /// The person's email.
        email: String,
        /// The role.
        role: String,
    },
}

#[derive(Subcommand)]
enum StripeCommand {
    /// Apply every Stripe event a webhook never delivered: lists Stripe's events of the types
    /// bff handles since the last successful sync (or over Stripe's 30 days) and applies the
    /// ones never processed, exactly once. Safe at any time; one process at a time.
    #[command(
        after_help = "Reads DATABASE_URL, DATABASE_CA_CERT, STRIPE_SECRET_KEY and STRIPE_API_BASE."
    )]
    Sync {
        /// List Stripe's whole 30 days, not only since the last successful sync.
        #[arg(long)]
        full: bool,
    },
}

/// The environment variables, as `--help` shows them (`docs/configuration.md` has the same
/// list with more words).
fn environment_help() -> String {
    let mut text = String::from("Environment (a .env file in the working directory also works):\n");
    for (group, variables) in bff::config::GROUPS {
        text.push_str(&format!("\n {group}:\n"));
        for variable in *variables {
            text.push_str(&format!(
                "  {:<35} {}\n  {:<35} [default: {}]\n",
                variable.name,
                variable.meaning,
                "",
                variable.default_text()
            ));
        }
    }
    text
}

/// Longest service-token lifetime `bff service-token` issues.
const MAX_SERVICE_TOKEN_TTL: u64 = 30 * 86_400;

fn parse_ttl(value: &str) -> Result<u64, String> {
    bff::auth::service::parse_ttl(value)
        .filter(|s| *s <= MAX_SERVICE_TOKEN_TTL)
        .ok_or_else(|| "expected a duration like 90s, 15m, 12h or 7d, at most 30d".to_owned())
}

fn main() -> ExitCode {
    bff::config::load_dotenv();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Schema => {
            print!("{}", bff::graphql::sdl());
            Ok(())
        }
        Command::Serve => Config::from_env()
            .map_err(config_errors)
            .and_then(|config| {
                // Outside the runtime: the trace exporter's blocking client must not live in it.
                let _telemetry = bff::telemetry::init(&config.telemetry);
                runtime()?.block_on(bff::http::run(&config))
            }),
        Command::Migrate => runtime().and_then(|rt| rt.block_on(migrate())),
        Command::Check => {
            return match runtime().map(|rt| rt.block_on(bff::check::run())) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(error) => {
                    eprintln!("bff: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Dev => {
            let _telemetry = bff::telemetry::init(&bff::config::telemetry::Telemetry::from_env());
            runtime().and_then(|rt| rt.block_on(bff::dev::run()))
        }
        Command::ServiceToken { ttl, subject } => service_token(ttl, &subject),
        Command::Healthcheck => healthcheck(),
        Command::Stripe {
            command: StripeCommand::Sync { full },
        } => runtime().and_then(|rt| rt.block_on(stripe_sync(full))),
        Command::Admin { command } => {
            let (email, role, change) = match command {
                AdminCommand::GrantRole { email, role } => {
                    (email, role, bff::admin::roles::Change::Grant)
                }
                AdminCommand::RevokeRole { email, role } => {
                    (email, role, bff::admin::roles::Change::Revoke)
                }
            };
            runtime().and_then(|rt| rt.block_on(change_role(&email, &role, change)))
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

/// Every configuration problem, one per line.
fn config_errors(errors: ConfigErrors) -> StartupError {
    let count = errors.0.len();
    let lines: Vec<String> = errors.0.iter().map(|e| format!("  {e}")).collect();
    StartupError(format!(
        "the configuration has {count} problem(s):\n{}",
        lines.join("\n")
    ))
}

fn service_token(seconds: u64, subject: &str) -> StartupResult<()> {
    let mut env = Env::process();
    let secret = bff::config::auth::read_service_secret(&mut env);
    env.finish(()).map_err(|e| StartupError(e.to_string()))?;
    let secret = secret.ok_or_else(|| {
        StartupError("SERVICE_JWT_SECRET is not set: set it to sign tokens".into())
    })?;
    let token = bff::auth::service::issue(secret.expose_secret().as_bytes(), subject, seconds)
        .map_err(|e| StartupError(format!("cannot sign the token: {e}")))?;
    println!("{token}");
    Ok(())
}

async fn migrate() -> StartupResult<()> {
    let mut env = Env::process();
    let database = bff::config::database::Database::read(&mut env);
    let database = env.finish(database).map_err(config_errors)?;
    let conn =
        bff::db::connect_with(database.url.expose_secret(), database.ca_cert.as_deref()).await?;
    let applied = bff::db::migrate::migrate_reporting(conn, || {
        println!("bff migrate: another migration holds the lock; waiting for it to finish");
    })
    .await?;
    if applied.is_empty() {
        println!("bff migrate: the database is up to date");
    } else {
        for version in applied {
            println!("bff migrate: applied {version}");
        }
    }
    Ok(())
}

async fn change_role(
    email: &str,
    role: &str,
    change: bff::admin::roles::Change,
) -> StartupResult<()> {
    let mut env = Env::process();
    let database = bff::config::database::Database::read(&mut env);
    let database = env.finish(database).map_err(config_errors)?;
    let mut conn =
        bff::db::connect_with(database.url.expose_secret(), database.ca_cert.as_deref()).await?;
    let actor = bff::config::admin::cli_actor();
    let done = bff::admin::roles::change(&mut conn, email, role, change, &actor).await?;
    println!("bff admin: {done}");
    Ok(())
}

async fn stripe_sync(full: bool) -> StartupResult<()> {
    use bff::stripe::sync::{self, SyncError};
    let mut env = Env::process();
    let database = bff::config::database::Database::read(&mut env);
    let stripe = bff::config::stripe::Stripe::read(&mut env, "http://localhost");
    let (database, stripe) = env.finish((database, stripe)).map_err(config_errors)?;
    if stripe.secret_key.is_none() {
        return Err(StartupError(
            "STRIPE_SECRET_KEY is not set: the sync reads Stripe's event list with it".into(),
        ));
    }
    let client = bff::stripe::StripeClient::new(&stripe);
    let mut conn =
        bff::db::connect_with(database.url.expose_secret(), database.ca_cert.as_deref()).await?;
    let report = match sync::run(&mut conn, &client, full, false).await {
        Err(SyncError::Busy) => {
            println!("bff stripe sync: another sync is running; waiting for it to finish");
            sync::run(&mut conn, &client, full, true).await
        }
        other => other,
    }
    .map_err(|e| StartupError(format!("the Stripe sync failed: {e}")))?;
    for (id, kind, outcome) in &report.recovered {
        println!("bff stripe sync: applied {id} ({kind}): {outcome}");
    }
    let counts = &report.counts;
    println!(
        "bff stripe sync: listed {} event(s) created since {}; recovered {}, {} processed before",
        counts.listed,
        report.since.format("%Y-%m-%dT%H:%M:%SZ"),
        counts.recovered,
        counts.listed - counts.recovered - counts.failed,
    );
    if counts.failed > 0 {
        return Err(StartupError(format!(
            "{} event(s) could not be applied; the next sync retries them",
            counts.failed
        )));
    }
    Ok(())
}

fn healthcheck() -> StartupResult<()> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let mut env = Env::process();
    let addr = bff::config::server::read_listen(&mut env);
    let mut addr = env.finish(addr).map_err(|e| StartupError(e.to_string()))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = Duration::from_secs(2);
    let probe = || -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    match probe() {
        Ok(head) if head.starts_with("HTTP/1.1 200") => Ok(()),
        Ok(head) => Err(StartupError(format!(
            "http://{addr}/healthz answered {:?}",
            head.lines().next().unwrap_or("")
        ))),
        Err(e) => Err(StartupError(format!("http://{addr}/healthz: {e}"))),
    }
}
