//! What one request may cost: `BFF_MAX_TOKENS`, `BFF_MAX_ALIASES`, `BFF_MAX_FRAGMENT_SPREADS`,
//! `BFF_MAX_DIRECTIVES`, `BFF_MAX_FIELDS`, `BFF_MAX_COST`, `BFF_RATE_LIMIT_PER_SECOND`,
//! `BFF_RATE_LIMIT_BURST`, `BFF_TRUSTED_DOCUMENTS`.

use std::path::PathBuf;

use super::env::{Env, Variable};

/// `BFF_MAX_TOKENS`.
pub const MAX_TOKENS: Variable = Variable::number(
    "BFF_MAX_TOKENS",
    "tokens a GraphQL document may have",
    5000,
    1,
    1_000_000,
);
/// `BFF_MAX_ALIASES`.
pub const MAX_ALIASES: Variable = Variable::number(
    "BFF_MAX_ALIASES",
    "aliases a GraphQL document may have",
    30,
    0,
    100_000,
);
/// `BFF_MAX_FRAGMENT_SPREADS`.
pub const MAX_FRAGMENT_SPREADS: Variable = Variable::number(
    "BFF_MAX_FRAGMENT_SPREADS",
    "fragment spreads a GraphQL document may have",
    100,
    0,
    100_000,
);
/// `BFF_MAX_DIRECTIVES`.
pub const MAX_DIRECTIVES: Variable = Variable::number(
    "BFF_MAX_DIRECTIVES",
    "directives a GraphQL document may have",
    50,
    0,
    100_000,
);
/// `BFF_MAX_FIELDS`.
pub const MAX_FIELDS: Variable = Variable::number(
    "BFF_MAX_FIELDS",
    "fields a document selects with its fragments expanded",
    1000,
    1,
    1_000_000,
);
/// `BFF_MAX_COST`.
pub const MAX_COST: Variable = Variable::number(
    "BFF_MAX_COST",
    "cost of one operation: 1 a field, 10 a database field, lists times their page size",
    5000,
    1,
    100_000_000,
);
/// `BFF_RATE_LIMIT_PER_SECOND`.
pub const RATE_PER_SECOND: Variable = Variable::number(
    "BFF_RATE_LIMIT_PER_SECOND",
    "cost refilled per second for each viewer (or client address when anonymous); 0 turns rate limiting off",
    200,
    0,
    100_000_000,
);
/// `BFF_RATE_LIMIT_BURST`.
pub const RATE_BURST: Variable = Variable::number(
    "BFF_RATE_LIMIT_BURST",
    "cost a viewer (or address) may spend at once; at least BFF_MAX_COST",
    10_000,
    1,
    1_000_000_000,
);
/// `BFF_TRUSTED_DOCUMENTS`.
pub const TRUSTED_DOCUMENTS: Variable = Variable::optional(
    "BFF_TRUSTED_DOCUMENTS",
    "manifest of the only operations allowed to run (graphql-codegen or Apollo format), over HTTP and WebSocket",
    "any document, and automatic persisted queries",
);

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[
    MAX_TOKENS,
    MAX_ALIASES,
    MAX_FRAGMENT_SPREADS,
    MAX_DIRECTIVES,
    MAX_FIELDS,
    MAX_COST,
    RATE_PER_SECOND,
    RATE_BURST,
    TRUSTED_DOCUMENTS,
];

/// The limits a GraphQL document must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Tokens in the document.
    pub tokens: u64,
    /// Aliases in the document.
    pub aliases: u64,
    /// Fragment spreads in the document.
    pub fragment_spreads: u64,
    /// Directives in the document.
    pub directives: u64,
    /// Fields after fragment expansion, all operations together.
    pub fields: u64,
    /// Cost of the operation that runs.
    pub cost: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::read(&mut Env::empty())
    }
}

impl Limits {
    /// Reads the document limits.
    pub fn read(env: &mut Env) -> Self {
        Limits {
            tokens: env.number(&MAX_TOKENS),
            aliases: env.number(&MAX_ALIASES),
            fragment_spreads: env.number(&MAX_FRAGMENT_SPREADS),
            directives: env.number(&MAX_DIRECTIVES),
            fields: env.number(&MAX_FIELDS),
            cost: env.number(&MAX_COST),
        }
    }
}

/// Cost-based rate limiting: a token bucket per viewer, or per client address.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// Cost refilled per second; 0 turns rate limiting off.
    pub per_second: u64,
    /// The bucket's size.
    pub burst: u64,
}

/// What requests may run and cost.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    /// What one document may contain and cost.
    pub document: Limits,
    /// The rate of cost per viewer or address.
    pub rate: RateLimit,
    /// The trusted documents manifest, when only its operations may run.
    pub trusted_documents: Option<PathBuf>,
}

impl RequestLimits {
    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        let document = Limits::read(env);
        let rate = RateLimit {
            per_second: env.number(&RATE_PER_SECOND),
            burst: env.number(&RATE_BURST),
        };
        if rate.per_second > 0 && rate.burst < document.cost {
            env.fail(
                &RATE_BURST,
                format!(
                    "must be at least BFF_MAX_COST ({}), or the costliest allowed operation could never run",
                    document.cost
                ),
            );
        }
        let trusted_documents = env.parse(&TRUSTED_DOCUMENTS, |path| {
            let path = PathBuf::from(path);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{} is not a readable file", path.display()))
            }
        });
        RequestLimits {
            document,
            rate,
            trusted_documents,
        }
    }
}
