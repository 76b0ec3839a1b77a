//! What `bff dev` fills in when a variable is unset (it reads the same variables as `serve`),
//! and the `PATH` it searches for PostgreSQL's programs.

use super::env::Env;

/// Better Auth secret `bff dev` uses when `BETTER_AUTH_SECRET` is unset (development only).
pub const SECRET: &str = "bff-dev-secret-not-for-production-0123456789";
/// The SvelteKit example's dev server: `BETTER_AUTH_URL` and the allowed origin by default.
pub const APP_ORIGIN: &str = "http://localhost:5173";

/// The process environment as `bff dev` sees it: development mode, `database_url` (its
/// private cluster) when given, and development values for what is unset.
pub fn env(database_url: Option<String>) -> Env<'static> {
    Env::new(move |name| {
        let value = std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match name {
            "BFF_ENV" => Some("development".to_owned()),
            "DATABASE_URL" => database_url.clone().or(value),
            "BETTER_AUTH_SECRET" => value.or_else(|| Some(SECRET.to_owned())),
            "BETTER_AUTH_URL" | "CORS_ALLOWED_ORIGINS" => {
                value.or_else(|| Some(APP_ORIGIN.to_owned()))
            }
            _ => value,
        }
    })
}

/// Whether `DATABASE_URL` is set: then `bff dev` uses it instead of a private cluster.
pub fn has_database_url() -> bool {
    Env::process().get(super::database::URL.name).is_some()
}

/// The directories of `PATH`.
pub fn search_path() -> Vec<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default()
}
