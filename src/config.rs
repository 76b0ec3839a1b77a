//! Configuration, read once from the environment at start-up, here and nowhere else: one small
//! module per concern, each declaring its variables (name, meaning, default: written once) and
//! importing none of their consumers. [`variables`] lists them all; `bff --help` and
//! `docs/configuration.md` are made from that list.
//!
//! A missing or malformed variable stops start-up with a message that names it; every problem
//! is reported at once. Secrets are [`secrecy::SecretString`]s, so they never reach a log
//! through `Debug`.

pub mod admin;
pub mod auth;
pub mod cache;
pub mod database;
pub(crate) mod dev;
pub mod env;
pub(crate) mod export;
pub(crate) mod jobs;
pub mod limits;
pub(crate) mod live;
pub mod notify;
pub(crate) mod redis;
pub mod server;
pub mod storage;
pub mod stripe;
pub mod telemetry;

pub use env::{ConfigError, ConfigErrors, Env, Variable};
pub use server::Environment;

/// Every variable, by concern, in the order the documentation lists them.
pub const GROUPS: &[(&str, &[Variable])] = &[
    ("Database", database::VARIABLES),
    ("Better Auth and service tokens", auth::VARIABLES),
    ("HTTP server", server::VARIABLES),
    ("Request limits", limits::VARIABLES),
    ("Shared limits (Redis)", redis::VARIABLES),
    ("Response cache", cache::VARIABLES),
    ("Account export", export::VARIABLES),
    ("Live updates (WebSocket)", live::VARIABLES),
    ("Photo jobs and the worker", jobs::VARIABLES),
    ("Photo storage (S3)", storage::VARIABLES),
    ("Stripe", stripe::VARIABLES),
    ("Notifications (email and push)", notify::VARIABLES),
    ("Administration", admin::VARIABLES),
    ("Logs and traces", telemetry::VARIABLES),
];

/// Every variable bff reads.
pub fn variables() -> impl Iterator<Item = &'static Variable> {
    GROUPS.iter().flat_map(|(_, variables)| variables.iter())
}

/// Everything the server reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// PostgreSQL and the pool.
    pub database: database::Database,
    /// Better Auth and service tokens.
    pub auth: auth::Auth,
    /// The HTTP server.
    pub server: server::Server,
    /// What requests may contain and cost.
    pub limits: limits::RequestLimits,
    /// Where limits shared by every instance live, if anywhere.
    pub redis: Option<redis::Redis>,
    /// Where automatic persisted query documents are shared, if anywhere (another Redis).
    pub apq_redis: Option<redis::Redis>,
    /// The per-viewer response cache.
    pub response_cache: cache::ResponseCache,
    /// The account export.
    pub export: export::Export,
    /// The WebSocket surface.
    pub live: live::Live,
    /// Photo jobs and the worker.
    pub jobs: jobs::Jobs,
    /// Photo storage.
    pub storage: storage::Storage,
    /// Stripe.
    pub stripe: stripe::Stripe,
    /// Notifications' delivery.
    pub notify: notify::Notify,
    /// The administration's roles and limits.
    pub admin: admin::Admin,
    /// Logs and traces.
    pub telemetry: telemetry::Telemetry,
}

impl Config {
    /// Reads the process environment (after a `.env` file, see [`load_dotenv`]).
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::read(Env::process())
    }

    /// Reads configuration through `lookup`, which returns a variable's value if it is set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        Self::read(Env::new(lookup))
    }

    /// Reads every module's variables from `env`, collecting every problem.
    pub fn read(mut env: Env) -> Result<Self, ConfigErrors> {
        let database = database::Database::read(&mut env);
        let auth = auth::Auth::read(&mut env);
        let server = server::Server::read(&mut env);
        let limits = limits::RequestLimits::read(&mut env);
        let (redis, apq_redis) = redis::Redis::read(&mut env);
        let response_cache = cache::ResponseCache::read(&mut env);
        let export = export::Export::read(&mut env);
        let live = live::Live::read(&mut env);
        let jobs = jobs::Jobs::read(&mut env);
        let storage = storage::Storage::read(&mut env);
        let stripe = stripe::Stripe::read(&mut env, &auth.url);
        let notify = notify::Notify::read(&mut env, &auth.url);
        let admin = admin::Admin::read(&mut env);
        let telemetry = telemetry::Telemetry::read(&mut env);
        env.finish(Config {
            database,
            auth,
            server,
            limits,
            redis,
            apq_redis,
            response_cache,
            export,
            live,
            jobs,
            storage,
            stripe,
            notify,
            admin,
            telemetry,
        })
    }

    /// Whether GraphiQL and introspection are on.
    pub fn is_development(&self) -> bool {
        self.server.environment == Environment::Development
    }
}

/// Loads a `.env` file from the working directory into the environment, if there is one (a
/// convenience for development; real environments set variables).
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

/// The variables as a Markdown table per concern: the body of `docs/configuration.md`'s
/// reference (a test keeps the file equal to this).
pub fn markdown() -> String {
    let mut out = String::new();
    for (group, variables) in GROUPS {
        out.push_str(&format!(
            "### {group}\n\n| variable | meaning | default |\n| --- | --- | --- |\n"
        ));
        for variable in *variables {
            let meaning = match variable.range_text() {
                Some(range) => format!("{}; {range}", variable.meaning),
                None => variable.meaning.to_owned(),
            };
            let default = match variable.default {
                env::Default::Required(hint) => format!("required: {hint}"),
                env::Default::Unset(_) => variable.default_text(),
                _ => format!("`{}`", variable.default_text()),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                variable.name,
                meaning.replace('|', "\\|"),
                default.replace('|', "\\|")
            ));
        }
        out.push('\n');
    }
    out
}
