//! What `bff dev` fills in when a variable is unset (it reads the same variables as `serve`),
//! and the `PATH` it searches for PostgreSQL's programs.

use super::env::Env;

/// Better Auth secret `bff dev` uses when `BETTER_AUTH_SECRET` is unset (development only).
pub(crate) const SECRET: &str = "bff-dev-secret-not-for-production-0123456789";
/// The SvelteKit example's dev server: `BETTER_AUTH_URL` and the allowed origin by default.
pub(crate) const APP_ORIGIN: &str = "http://localhost:5173";

/// Where `bff dev` catches email when `BFF_SMTP_URL` is unset.
pub(crate) const MAIL_DIR: &str = ".bff/mail";
/// The sender of `bff dev`'s caught email when `BFF_EMAIL_FROM` is unset.
const EMAIL_FROM: &str = "Photo app <noreply@localhost>";

/// The bucket of the store `bff dev` embeds when `BFF_STORAGE_URL` is unset.
pub const STORAGE_BUCKET: &str = "bff-dev";
/// The access key of that store.
pub const STORAGE_ACCESS_KEY: &str = "bff-dev";
/// The secret key of that store (development only).
pub const STORAGE_SECRET_KEY: &str = "bff-dev-storage-secret";

/// Whether `BFF_STORAGE_URL` is set: then `bff dev` uses that bucket instead of embedding one.
pub(crate) fn has_storage_url() -> bool {
    Env::process().get(super::storage::URL.name).is_some()
}

/// The process environment as `bff dev` sees it: development mode, `database_url` (its
/// private cluster) and `storage_endpoint` (its embedded store) when given, and development
/// values for what is unset.
pub(crate) fn env(database_url: Option<String>, storage_endpoint: Option<String>) -> Env<'static> {
    Env::new(move |name| {
        let value = std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(endpoint) = &storage_endpoint {
            let embedded = match name {
                "BFF_STORAGE_URL" => Some(format!("s3://{STORAGE_BUCKET}")),
                "AWS_ACCESS_KEY_ID" => Some(STORAGE_ACCESS_KEY.to_owned()),
                "AWS_SECRET_ACCESS_KEY" => Some(STORAGE_SECRET_KEY.to_owned()),
                "AWS_SESSION_TOKEN" => Some(String::new()),
                "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
                "AWS_REGION" => Some("us-east-1".to_owned()),
                _ => None,
            };
            if embedded.is_some() {
                return embedded;
            }
        }
        match name {
            "BFF_ENV" => Some("development".to_owned()),
            "DATABASE_URL" => database_url.clone().or(value),
            "BETTER_AUTH_SECRET" => value.or_else(|| Some(SECRET.to_owned())),
            "BETTER_AUTH_URL" | "CORS_ALLOWED_ORIGINS" => {
                value.or_else(|| Some(APP_ORIGIN.to_owned()))
            }
            // Email is caught in a directory (read at /dev/mail): nothing leaves the machine.
            "BFF_SMTP_URL" => value.or_else(|| Some(format!("file://{MAIL_DIR}"))),
            "BFF_EMAIL_FROM" => value.or_else(|| Some(EMAIL_FROM.to_owned())),
            "BFF_PUBLIC_URL" => value.or_else(|| {
                let listen = std::env::var("BFF_LISTEN")
                    .or_else(|_| std::env::var("PORT").map(|port| format!("127.0.0.1:{port}")))
                    .unwrap_or_else(|_| "127.0.0.1:8080".into());
                Some(format!("http://{}", listen.replace("0.0.0.0", "127.0.0.1")))
            }),
            _ => value,
        }
    })
}

/// Whether `DATABASE_URL` is set: then `bff dev` uses it instead of a private cluster.
pub(crate) fn has_database_url() -> bool {
    Env::process().get(super::database::URL.name).is_some()
}

/// The directories of `PATH`.
pub(crate) fn search_path() -> Vec<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default()
}
