//! `bff admin grant-role EMAIL ROLE` and `bff admin revoke-role EMAIL ROLE`: the first admin's
//! bootstrap, and any role change outside the admin API. Writes Better Auth's `user.role` (the
//! admin plugin's comma-separated list) and one audit row with the command line as the actor,
//! in one transaction.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::config::admin::roles;
use crate::db::admin::audit::{self, Action};
use crate::error::{StartupError, StartupResult};

/// Whether a role is given or taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// `grant-role`.
    Grant,
    /// `revoke-role`.
    Revoke,
}

/// Gives `role` to (or takes it from) the person with `email`, as `actor` (who ran the
/// command); what happened, in a sentence. Unknown emails and malformed roles fail, changing
/// nothing.
pub async fn change(
    conn: &mut AsyncPgConnection,
    email: &str,
    role: &str,
    change: Change,
    actor: &str,
) -> StartupResult<String> {
    let role = role.trim();
    if role.is_empty() || !role.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err(StartupError(format!(
            "{role:?} is not a role name (letters, digits and punctuation, no commas)"
        )));
    }
    let email = email.trim();
    conn.transaction(async |conn| {
        #[derive(diesel::QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            role: Option<String>,
        }
        let found: Vec<Found> = diesel::sql_query(
            "SELECT id, role FROM \"user\" WHERE lower(email) = lower($1) FOR UPDATE",
        )
        .bind::<diesel::sql_types::Text, _>(email)
        .load(conn)
        .await?;
        let person = match found.as_slice() {
            [person] => person,
            [] => return Err(StartupError(format!("nobody has the email {email}"))),
            _ => {
                return Err(StartupError(format!(
                    "{} people have the email {email} in different cases; set the role of one \
                     by id with SQL or Better Auth's setRole",
                    found.len()
                )));
            }
        };
        let before = roles(person.role.as_deref().unwrap_or_default());
        let mut after = before.clone();
        match change {
            Change::Grant if !after.iter().any(|r| r == role) => after.push(role.to_owned()),
            Change::Revoke => after.retain(|r| r != role),
            Change::Grant => {}
        }
        if after == before {
            return Ok(format!(
                "{email} {} the role {role}; nothing changed",
                if change == Change::Grant {
                    "already has"
                } else {
                    "does not have"
                }
            ));
        }
        let joined = after.join(",");
        crate::db::admin::set_roles(conn, &person.id, (!joined.is_empty()).then_some(&joined))
            .await?;
        audit::record(
            conn,
            &Action {
                actor_id: actor,
                actor_role: "cli",
                impersonating: false,
                target_id: Some(&person.id),
                action: if change == Change::Grant {
                    "GRANT_ROLE"
                } else {
                    "REVOKE_ROLE"
                },
                reason: None,
                before: Some(json!({ "roles": before })),
                after: Some(json!({ "roles": after })),
            },
        )
        .await?;
        Ok(format!("{email} now has the roles [{}]", after.join(", ")))
    })
    .await
}
