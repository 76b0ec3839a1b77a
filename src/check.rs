//! `bff check`: what an operator runs before a release or at 3 a.m. It reads the
//! configuration, connects as `serve` would, and reports, one line each, TLS, the server,
//! Better Auth's tables, pending (and unknown newer) migrations, the shared Redis, photo storage, Stripe and the worker secret. Anything that
//! would stop `serve` from working is `FAIL` (and the exit code is 1); optional features
//! that are off are `warn`.

use diesel_async::AsyncPgConnection;

use crate::config::database::Database;
use crate::config::{Config, Env};
use crate::db::SslMode;
use crate::db::tls::Check;

/// How one finding reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// As it should be.
    Ok,
    /// Works, with something off or unverified.
    Warn,
    /// Would not work.
    Fail,
}

/// One line of the report.
#[derive(Debug)]
pub struct Finding {
    /// Ok, warn or fail.
    pub level: Level,
    /// What was checked.
    pub subject: &'static str,
    /// What was found.
    pub detail: String,
}

fn finding(level: Level, subject: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        level,
        subject,
        detail: detail.into(),
    }
}

/// Runs every check against the process environment and prints the report; `true` when
/// nothing failed.
pub async fn run() -> bool {
    let env = Env::process();
    let findings = findings(|name| env.get(name)).await;
    for f in &findings {
        let tag = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        println!("{tag}  {:<14} {}", f.subject, f.detail);
    }
    let failed = findings.iter().filter(|f| f.level == Level::Fail).count();
    if failed == 0 {
        println!("bff check: ready");
    } else {
        println!("bff check: {failed} problem(s)");
    }
    failed == 0
}

/// Every finding, reading variables through `lookup`. Every configuration problem is its own
/// `FAIL` line; the database is still checked when its own variables are sound.
pub async fn findings(lookup: impl Fn(&str) -> Option<String>) -> Vec<Finding> {
    let mut out = Vec::new();
    let config = match Config::from_lookup(&lookup) {
        Ok(config) => config,
        Err(errors) => {
            for error in errors.0 {
                out.push(finding(Level::Fail, "configuration", error.to_string()));
            }
            let mut env = Env::new(&lookup);
            let database = Database::read(&mut env);
            if let Ok(database) = env.finish(database) {
                out.extend(self::database(&database).await);
            }
            return out;
        }
    };
    out.push(finding(
        Level::Ok,
        "configuration",
        format!(
            "{:?}, listen {}, pool {} (wait {} ms), statement timeout {}",
            config.server.environment,
            config.server.listen,
            config.database.pool_size,
            config.database.pool_timeout.as_millis(),
            config
                .database
                .statement_timeout
                .map_or("off".to_owned(), |t| format!("{} ms", t.as_millis())),
        ),
    ));
    if let Some(path) = &config.limits.trusted_documents {
        out.push(match crate::pipeline::documents::Documents::trusted(path) {
            Ok(documents) => finding(
                Level::Ok,
                "documents",
                format!(
                    "{} trusted documents from {}: nothing else runs",
                    documents.trusted_count().unwrap_or(0),
                    path.display()
                ),
            ),
            Err(error) => finding(
                Level::Fail,
                "documents",
                format!("BFF_TRUSTED_DOCUMENTS: {error}"),
            ),
        });
    }
    out.extend(database(&config.database).await);
    out.push(notifications(&config).await);
    out.push(
        match (&config.stripe.secret_key, &config.stripe.webhook_secret) {
            (Some(_), Some(_)) => finding(
                Level::Ok,
                "stripe",
                format!(
                    "API key and webhook secret set (API {}); {}",
                    config.stripe.api_base,
                    config.stripe.sync_interval.map_or(
                        "the periodic Stripe sync is off".to_owned(),
                        |every| format!("serve syncs missed events every {} s", every.as_secs())
                    )
                ),
            ),
            (None, None) => finding(
                Level::Warn,
                "stripe",
                "not configured: billing operations fail and webhooks answer 503",
            ),
            (Some(_), None) => finding(
                Level::Warn,
                "stripe",
                "STRIPE_WEBHOOK_SECRET unset: webhooks answer 503, so payments never grant credits",
            ),
            (None, Some(_)) => finding(
                Level::Warn,
                "stripe",
                "STRIPE_SECRET_KEY unset: checkouts and plan changes fail",
            ),
        },
    );
    if let Some(redis) = &config.redis {
        out.push(self::redis(redis, crate::redis::Role::Limits).await);
    }
    if let Some(redis) = &config.apq_redis {
        out.push(self::redis(redis, crate::redis::Role::Documents).await);
    }
    out.push(storage(&config.storage).await);
    out.push(if config.auth.service_jwt_secret.is_some() {
        finding(Level::Ok, "worker", "SERVICE_JWT_SECRET set")
    } else {
        finding(
            Level::Warn,
            "worker",
            "SERVICE_JWT_SECRET unset: the photo worker cannot claim jobs",
        )
    });
    out
}

/// How email leaves, and the deliveries queue: FAILED ones in the last day and deliveries due
/// for more than five minutes (no sender running) are warnings.
async fn notifications(config: &Config) -> Finding {
    let notify = &config.notify;
    // Emails written to a directory reach nobody: fine in development only.
    let mut caught = false;
    let email = match &notify.email {
        Some(email) => match email.mail_dir() {
            Some(dir) => {
                caught = !config.is_development();
                format!("email written to {} (not sent)", dir.display())
            }
            None => "email through BFF_SMTP_URL".to_owned(),
        },
        None => "email off (BFF_SMTP_URL unset)".to_owned(),
    };
    let sender = match notify.poll {
        Some(poll) => format!("serve sends every {} ms", poll.as_millis()),
        None => "this configuration sends nothing (BFF_NOTIFY_POLL_MS=0)".to_owned(),
    };
    let connected = match crate::db::pool::options(&config.database) {
        Ok(options) => tokio::time::timeout(config.database.pool_timeout, options.connect())
            .await
            .ok()
            .and_then(Result::ok),
        Err(_) => None,
    };
    // The database's own findings say why there is no connection.
    let Some(mut conn) = connected else {
        return finding(
            Level::Warn,
            "notifications",
            format!("{email}; {sender}; queue not read"),
        );
    };
    let overdue = std::time::Duration::from_secs(300);
    match crate::db::notifications::deliveries::backlog(&mut conn, notify.batch_window, overdue)
        .await
    {
        Ok(b) => {
            let queue = format!(
                "{} pending ({} retrying, {} overdue), {} failed in the last day ({} in all)",
                b.pending, b.retrying, b.overdue, b.failed_day, b.failed
            );
            let level = if b.failed_day > 0 || b.overdue > 0 || caught {
                Level::Warn
            } else {
                Level::Ok
            };
            let last = b
                .last_error
                .filter(|_| b.failed_day > 0)
                .map(|error| format!("; last failure: {error}"))
                .unwrap_or_default();
            let hint = if caught {
                "; BFF_SMTP_URL=file:// is for development: set an smtp:// or smtps:// server"
            } else if b.overdue > 0 {
                "; overdue deliveries mean no bff serve is sending: check BFF_NOTIFY_POLL_MS and the senders' logs"
            } else {
                ""
            };
            finding(
                level,
                "notifications",
                format!("{email}; {sender}; {queue}{last}{hint}"),
            )
        }
        Err(error) => finding(
            Level::Warn,
            "notifications",
            format!("{email}; {sender}; the queue cannot be read ({error})"),
        ),
    }
}

/// The shared Redis answers PING, and keeps what it holds (a warning otherwise: bff serves on
/// per-instance state). The limits' Redis should not evict: an evicted bucket is a full one.
async fn redis(config: &crate::config::redis::Redis, role: crate::redis::Role) -> Finding {
    use crate::redis::Role;
    let where_ = config.describe();
    let name = match role {
        Role::Limits => "redis",
        Role::Documents => "apq-redis",
    };
    // Serving fails open after a short timeout; a check waits long enough for an answer (a
    // TLS handshake on a loaded machine), so it says what is wrong rather than "timed out".
    let mut config = config.clone();
    config.timeout = config.timeout.max(std::time::Duration::from_secs(5));
    let redis = match crate::redis::Redis::new(config, role) {
        Ok(redis) => redis,
        Err(error) => return finding(Level::Fail, name, error),
    };
    let shared = match role {
        Role::Limits => "rate limits and the export limit are shared",
        Role::Documents => "APQ documents are shared",
    };
    if let Err(error) = redis.ping().await {
        return finding(
            Level::Warn,
            name,
            format!("{where_}: {error}; each instance uses its own state until it answers"),
        );
    }
    match (role, redis.eviction_policy().await) {
        // Every bucket has a TTL, so the volatile-* policies evict them as well as allkeys-*.
        (Role::Limits, Ok(Some(policy))) if policy != "noeviction" => finding(
            Level::Warn,
            name,
            format!(
                "{where_} answers, but its maxmemory-policy is {policy}: under memory pressure it \
                 evicts rate-limit buckets (a throttled client gets a full one); use noeviction"
            ),
        ),
        _ => finding(Level::Ok, name, format!("{where_} answers: {shared}")),
    }
}

/// The bucket: reachable, the credentials accepted, a probe object written, read and deleted.
async fn storage(config: &crate::config::storage::Storage) -> Finding {
    let Some(bucket) = &config.bucket else {
        return finding(
            Level::Warn,
            "storage",
            "not configured (BFF_STORAGE_URL unset): photo uploads are off",
        );
    };
    let store = match crate::storage::Store::new(bucket, config.url_lifetime) {
        Ok(store) => store,
        Err(error) => return finding(Level::Fail, "storage", error),
    };
    match store.check().await {
        Ok(()) => finding(
            Level::Ok,
            "storage",
            format!(
                "{}: a probe object written, read and deleted",
                store.describe()
            ),
        ),
        Err(error) => finding(
            Level::Fail,
            "storage",
            format!("{}: {error}", store.describe()),
        ),
    }
}

async fn database(config: &Database) -> Vec<Finding> {
    let mut out = Vec::new();
    let options = match crate::db::pool::options(config) {
        Ok(options) => options,
        Err(error) => return vec![finding(Level::Fail, "database", error.0)],
    };
    let connecting = tokio::time::timeout(config.pool_timeout, options.connect()).await;
    let mut conn: AsyncPgConnection = match connecting {
        Ok(Ok(conn)) => conn,
        Ok(Err(error)) => {
            let detail = crate::db::connection_error_text(&error);
            let subject = if detail.starts_with("TLS") {
                "tls"
            } else {
                "database"
            };
            return vec![finding(Level::Fail, subject, detail)];
        }
        Err(_) => {
            return vec![finding(
                Level::Fail,
                "database",
                format!(
                    "no answer from {} within {} ms (DATABASE_POOL_TIMEOUT_MS)",
                    options.host(),
                    config.pool_timeout.as_millis()
                ),
            )];
        }
    };
    let server = match crate::db::connect::Server::describe(&mut conn).await {
        Ok(server) => server,
        Err(error) => return vec![finding(Level::Fail, "database", error.to_string())],
    };
    out.push(finding(
        Level::Ok,
        "database",
        format!(
            "connected to {} as {}, PostgreSQL {}",
            options.host(),
            server.user_name,
            server.version
        ),
    ));
    let mode = options.ssl_mode().as_str();
    out.push(match (server.ssl, options.check()) {
        (true, check) => finding(
            if check == Check::None {
                Level::Warn
            } else {
                Level::Ok
            },
            "tls",
            format!(
                "{} {} (sslmode={mode}; {})",
                server.tls_version.unwrap_or_default(),
                server.cipher.unwrap_or_default(),
                match check {
                    Check::None => "certificate not verified: use verify-full to check it",
                    Check::Ca => "certificate chain verified, host name not checked",
                    Check::Full => "certificate and host name verified",
                }
            ),
        ),
        (false, _) if options.ssl_mode() == SslMode::Disable => finding(
            Level::Warn,
            "tls",
            "off (sslmode=disable): fine on a private network only",
        ),
        (false, _) => finding(
            Level::Warn,
            "tls",
            format!("off: the server offers no TLS (sslmode={mode})"),
        ),
    });
    match crate::db::better_auth_tables_exist(&mut conn).await {
        Ok(true) => out.push(finding(
            Level::Ok,
            "better auth",
            if server.jwks {
                "tables \"user\", session and jwks present"
            } else {
                "tables \"user\" and session present (no jwks: Better Auth JWT bearers are off)"
            },
        )),
        Ok(false) => {
            out.push(finding(
                Level::Fail,
                "better auth",
                "tables \"user\"/session missing: run Better Auth's migrate step in the SvelteKit \
                 app (npx @better-auth/cli migrate), then `bff migrate`",
            ));
            return out;
        }
        Err(error) => {
            out.push(finding(Level::Fail, "better auth", error.to_string()));
            return out;
        }
    }
    out.push(migrations(conn).await);
    out
}

async fn migrations(mut conn: AsyncPgConnection) -> Finding {
    match crate::db::migrate::newer_migrations(&mut conn).await {
        Ok(newer) if !newer.incompatible.is_empty() => {
            return finding(
                Level::Fail,
                "migrations",
                format!(
                    "the database has migrations this bff does not know, not declared compatible \
                     ({}): serve refuses to start; deploy the bff that applied them",
                    newer.incompatible.join(", ")
                ),
            );
        }
        Ok(_) => {}
        Err(error) => return finding(Level::Fail, "migrations", error.to_string()),
    }
    match crate::db::migrate::pending(conn).await {
        Ok(pending) if pending.is_empty() => finding(Level::Ok, "migrations", "up to date"),
        Ok(pending) => finding(
            Level::Fail,
            "migrations",
            format!(
                "{} pending ({}): run `bff migrate`",
                pending.len(),
                pending.join(", ")
            ),
        ),
        Err(error) => finding(Level::Fail, "migrations", error),
    }
}
