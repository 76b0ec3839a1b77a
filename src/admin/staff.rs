//! Who may administer: a signed-in person whose Better Auth roles (`user.role`, the admin
//! plugin's comma-separated list) include one of `BFF_ADMIN_ROLES` or `BFF_SUPPORT_ROLES`.
//!
//! | permission | support | admin |
//! | --- | --- | --- |
//! | read any account, the jobs across people, the stats, the audit trail | yes | yes |
//! | grant or take back credits | up to `BFF_SUPPORT_GRANT_LIMIT_CENTS` per action | up to `BFF_ADMIN_GRANT_LIMIT_CENTS` |
//! | ban, unban, revoke sessions, change plans | no | yes |

use crate::config::admin::{Admin, roles};
use crate::db::viewer::SessionUser;
use crate::error::AppError;

/// A staff role, by what it may do.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "StaffRole")]
pub(crate) enum Role {
    /// Reads any account; grants credits up to its limit; retries, fails or refunds jobs.
    Support,
    /// Everything: bans, larger grants, sessions, plan changes.
    Admin,
}

impl Role {
    /// As the audit trail names it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Support => "support",
            Role::Admin => "admin",
        }
    }
}

/// The person acting on `/admin/graphql`, with their role (request data).
#[derive(Clone, Debug)]
pub(crate) struct Staff {
    /// Their user id.
    pub(crate) user_id: String,
    /// Their email.
    pub(crate) email: String,
    /// The higher of their roles.
    pub(crate) role: Role,
    /// The most credit cents they may grant or take back at once.
    pub(crate) grant_limit_cents: i64,
}

impl Staff {
    /// `user` as staff, if their roles include an admin or a support role (admin wins).
    pub(crate) fn of(user: &SessionUser, config: &Admin) -> Option<Staff> {
        let theirs = roles(user.role.as_deref().unwrap_or_default());
        let has = |names: &[String]| theirs.iter().any(|r| names.contains(r));
        let (role, grant_limit_cents) = if has(&config.admin_roles) {
            (Role::Admin, config.admin_grant_limit_cents)
        } else if has(&config.support_roles) {
            (Role::Support, config.support_grant_limit_cents)
        } else {
            return None;
        };
        Some(Staff {
            user_id: user.id.clone(),
            email: user.email.clone(),
            role,
            grant_limit_cents,
        })
    }

    /// `FORBIDDEN` unless an admin: `what` is what only an admin may do.
    pub(crate) fn require_admin(&self, what: &str) -> Result<(), AppError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Support => Err(AppError::Forbidden(format!("only an admin can {what}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Option<&str>) -> SessionUser {
        SessionUser {
            id: "u".into(),
            name: "n".into(),
            email: "e@example.com".into(),
            email_verified: true,
            image: None,
            role: role.map(str::to_owned),
            ban: None,
            impersonated_by: None,
            session_id: "s".into(),
            session_expires_at: chrono::Utc::now(),
            state: None,
        }
    }

    #[test]
    fn roles_are_read_from_better_auths_comma_separated_list() {
        let config = Admin::default();
        let role = |r| Staff::of(&user(r), &config).map(|s| s.role);
        assert_eq!(role(None), None);
        assert_eq!(role(Some("user")), None);
        assert_eq!(role(Some("support")), Some(Role::Support));
        assert_eq!(role(Some("user, admin")), Some(Role::Admin));
        assert_eq!(role(Some("support,admin")), Some(Role::Admin));
        assert_eq!(role(Some("administrator")), None, "whole names only");
        let renamed = Admin {
            admin_roles: vec!["owner".into()],
            ..Admin::default()
        };
        assert_eq!(
            Staff::of(&user(Some("admin")), &renamed).map(|s| s.role),
            None
        );
        assert_eq!(
            Staff::of(&user(Some("owner")), &renamed).map(|s| s.role),
            Some(Role::Admin)
        );
    }
}
