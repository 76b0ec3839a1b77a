//! The per-viewer response cache: `BFF_RESPONSE_CACHE`, `BFF_RESPONSE_CACHE_BYTES`.

use super::env::{Env, Variable};

/// `BFF_RESPONSE_CACHE`.
pub const ENABLED: Variable = Variable::value(
    "BFF_RESPONSE_CACHE",
    "on: a signed-in viewer's query is answered from memory while none of their data changed (never stale: every write bumps their version); off: every query executes",
    "on",
);
/// `BFF_RESPONSE_CACHE_BYTES`.
pub const BYTES: Variable = Variable::number(
    "BFF_RESPONSE_CACHE_BYTES",
    "memory the response cache may hold per process, in bytes (least recently used answers go first)",
    64 * 1024 * 1024,
    0,
    1 << 40,
);

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[ENABLED, BYTES];

/// The response cache's settings.
#[derive(Clone, Copy, Debug)]
pub struct ResponseCache {
    /// Bytes it may hold; 0 when it is off.
    pub bytes: usize,
}

impl ResponseCache {
    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        let enabled = env
            .parse(&ENABLED, |value| match value {
                "on" => Ok(true),
                "off" => Ok(false),
                other => Err(format!("expected on or off, got {other:?}")),
            })
            .unwrap_or(true);
        let bytes = usize::try_from(env.number(&BYTES)).unwrap_or(usize::MAX);
        ResponseCache {
            bytes: if enabled { bytes } else { 0 },
        }
    }
}
