//! The people who run the app: `BFF_ADMIN_ROLES`, `BFF_SUPPORT_ROLES` and how many credits each
//! may grant or take back in one action (`BFF_SUPPORT_GRANT_LIMIT_CENTS`,
//! `BFF_ADMIN_GRANT_LIMIT_CENTS`). Roles are Better Auth's admin plugin's `user.role`, a
//! comma-separated list.

use super::env::{Env, Variable};

/// `BFF_ADMIN_ROLES`.
pub const ADMIN_ROLES: Variable = Variable::value(
    "BFF_ADMIN_ROLES",
    "Better Auth roles (user.role, comma-separated) that may do everything on /admin/graphql",
    "admin",
);
/// `BFF_SUPPORT_ROLES`.
pub const SUPPORT_ROLES: Variable = Variable::value(
    "BFF_SUPPORT_ROLES",
    "Better Auth roles that may read any account, grant credits up to BFF_SUPPORT_GRANT_LIMIT_CENTS and retry, fail or refund jobs",
    "support",
);
/// `BFF_SUPPORT_GRANT_LIMIT_CENTS`.
pub const SUPPORT_GRANT_LIMIT_CENTS: Variable = Variable::number(
    "BFF_SUPPORT_GRANT_LIMIT_CENTS",
    "most credit cents support may grant or take back in one action",
    2_000,
    0,
    100_000_000,
);
/// `BFF_ADMIN_GRANT_LIMIT_CENTS`.
pub const ADMIN_GRANT_LIMIT_CENTS: Variable = Variable::number(
    "BFF_ADMIN_GRANT_LIMIT_CENTS",
    "most credit cents an admin may grant or take back in one action",
    1_000_000,
    0,
    100_000_000,
);

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[
    ADMIN_ROLES,
    SUPPORT_ROLES,
    SUPPORT_GRANT_LIMIT_CENTS,
    ADMIN_GRANT_LIMIT_CENTS,
];

/// Who may administer, and how much they may grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin {
    /// Role names with every permission.
    pub admin_roles: Vec<String>,
    /// Role names with support's permissions.
    pub support_roles: Vec<String>,
    /// Largest grant (or take-back) support may make, in cents.
    pub support_grant_limit_cents: i64,
    /// Largest grant (or take-back) an admin may make, in cents.
    pub admin_grant_limit_cents: i64,
}

impl Default for Admin {
    fn default() -> Self {
        Admin::read(&mut Env::empty())
    }
}

/// Who runs `bff admin …`, as the audit trail names them: `cli:` and the operating system's
/// user (`USER`), or `cli:unknown`.
pub fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// A comma-separated list of role names, trimmed, empty names dropped.
pub fn roles(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Admin {
    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        let list = |env: &mut Env, variable: &Variable| {
            let names = env.list(variable, |name| {
                if name.bytes().all(|b| b.is_ascii_graphic()) {
                    Ok(name.to_owned())
                } else {
                    Err(format!("{name:?} is not a role name"))
                }
            });
            if names.is_empty() {
                roles(&variable.default_text())
            } else {
                names
            }
        };
        let admin_roles = list(env, &ADMIN_ROLES);
        let support_roles = list(env, &SUPPORT_ROLES);
        let cents = |env: &mut Env, variable: &Variable| {
            i64::try_from(env.number(variable)).unwrap_or(i64::MAX)
        };
        Admin {
            admin_roles,
            support_roles,
            support_grant_limit_cents: cents(env, &SUPPORT_GRANT_LIMIT_CENTS),
            admin_grant_limit_cents: cents(env, &ADMIN_GRANT_LIMIT_CENTS),
        }
    }
}
