//! Photo jobs and their worker: `FREE_PHOTO_ALLOWANCE`, `BFF_WORKER_LEASE_MS`,
//! `BFF_WORKER_MAX_ATTEMPTS`.

use std::time::Duration;

use super::env::{Env, Variable};

/// `FREE_PHOTO_ALLOWANCE`.
pub(crate) const FREE_PHOTO_ALLOWANCE: Variable = Variable::number(
    "FREE_PHOTO_ALLOWANCE",
    "free photos every user gets before credits are spent",
    3,
    0,
    1000,
);
/// `BFF_WORKER_LEASE_MS`.
pub(crate) const WORKER_LEASE_MS: Variable = Variable::number(
    "BFF_WORKER_LEASE_MS",
    "how long a worker's claim on a job lasts without heartbeatPhotoJob, in ms",
    300_000,
    1_000,
    86_400_000,
);
/// `BFF_WORKER_MAX_ATTEMPTS`.
pub(crate) const WORKER_MAX_ATTEMPTS: Variable = Variable::number(
    "BFF_WORKER_MAX_ATTEMPTS",
    "claims a job gets; when the last one's lease expires the job fails and is refunded",
    3,
    1,
    100,
);

/// The variables of this module.
pub(crate) const VARIABLES: &[Variable] =
    &[FREE_PHOTO_ALLOWANCE, WORKER_LEASE_MS, WORKER_MAX_ATTEMPTS];

/// How photo jobs are priced and leased.
#[derive(Clone, Copy, Debug)]
pub struct Jobs {
    /// Free photos per user before credits are spent.
    pub free_photo_allowance: i32,
    /// How long a worker's claim lasts without a heartbeat.
    pub worker_lease: Duration,
    /// Claims a job gets before an expired lease fails it.
    pub worker_max_attempts: i32,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs::read(&mut Env::empty())
    }
}

impl Jobs {
    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        Jobs {
            free_photo_allowance: env.number(&FREE_PHOTO_ALLOWANCE) as i32,
            worker_lease: env.millis(&WORKER_LEASE_MS),
            worker_max_attempts: env.number(&WORKER_MAX_ATTEMPTS) as i32,
        }
    }
}
