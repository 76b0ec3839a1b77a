//! The account export (`GET /account/export`): `BFF_EXPORT_TIMEOUT_MS`,
//! `BFF_EXPORT_MIN_BYTES_PER_SECOND`, `BFF_EXPORT_SPOOL_BYTES`.

use std::time::Duration;

use super::env::{Env, Variable};

/// `BFF_EXPORT_TIMEOUT_MS`.
pub(crate) const TIMEOUT_MS: Variable = Variable::number(
    "BFF_EXPORT_TIMEOUT_MS",
    "time an export's download may take, in ms, plus its size at BFF_EXPORT_MIN_BYTES_PER_SECOND (a slower reader is cut off)",
    60_000,
    1_000,
    3_600_000,
);
/// `BFF_EXPORT_MIN_BYTES_PER_SECOND`.
pub(crate) const MIN_BYTES_PER_SECOND: Variable = Variable::number(
    "BFF_EXPORT_MIN_BYTES_PER_SECOND",
    "the slowest average a download may have: each of these bytes adds a second to BFF_EXPORT_TIMEOUT_MS",
    64 * 1024,
    1024,
    1 << 30,
);
/// `BFF_EXPORT_SPOOL_BYTES`.
pub(crate) const SPOOL_BYTES: Variable = Variable::number(
    "BFF_EXPORT_SPOOL_BYTES",
    "disk the documents of exports being downloaded may take in the temporary directory (TMPDIR) per process, in bytes; an export past it fails",
    1 << 30,
    1 << 20,
    1 << 44,
);

/// The variables of this module.
pub(crate) const VARIABLES: &[Variable] = &[TIMEOUT_MS, MIN_BYTES_PER_SECOND, SPOOL_BYTES];

/// The export's settings.
#[derive(Clone, Copy, Debug)]
pub struct Export {
    /// What a download may take at least; longer documents get more.
    pub timeout: Duration,
    /// The slowest average download: each of these bytes adds a second.
    pub min_bytes_per_second: u64,
    /// Bytes of spooled documents per process.
    pub spool_bytes: u64,
}

impl Default for Export {
    fn default() -> Self {
        Export::read(&mut Env::empty())
    }
}

impl Export {
    /// How long a download of `bytes` may take.
    pub fn allowed(&self, bytes: u64) -> Duration {
        self.timeout + Duration::from_secs_f64(bytes as f64 / self.min_bytes_per_second as f64)
    }

    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        Export {
            timeout: env.millis(&TIMEOUT_MS),
            min_bytes_per_second: env.number(&MIN_BYTES_PER_SECOND),
            spool_bytes: env.number(&SPOOL_BYTES),
        }
    }
}
