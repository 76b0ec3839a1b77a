//! What support does. Each mutation is one transaction: the change and exactly one row of the
//! audit trail commit together, and a refused or failed one writes neither.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use super::staff::Staff;
use super::types::{LedgerRow, Person};
use crate::db::admin::audit::{self, Action};
use crate::db::admin::{self, Person as PersonRow};
use crate::db::credits::{Change, CreditAccount, CreditTransactionKind};
use crate::error::{AppError, AppResult};
use crate::graphql::context::{conn, data};
use crate::graphql::scalars::Decimal;

/// Longest reason, in characters.
const MAX_REASON: usize = 500;

/// The administration's mutations of people and their credits.
#[derive(Default)]
pub struct PeopleMutation;

/// Credits to grant (or take back) with the reason.
#[derive(InputObject)]
struct GrantCreditsInput {
    /// Whose account.
    user_id: ID,
    /// Credits to add; negative takes them back, at most the balance (like spending, a
    /// take-back never leaves the balance below zero). Not zero, and within the caller's
    /// grant limit.
    amount: Decimal,
    /// Why (kept in the audit trail; required).
    reason: String,
}

/// The account after a grant.
#[derive(SimpleObject)]
struct GrantCreditsPayload {
    /// The new balance.
    balance: Decimal,
    /// The ledger entry written (kind `ADJUSTMENT`).
    entry: LedgerRow,
}

/// A ban.
#[derive(InputObject)]
struct BanUserInput {
    /// Whom.
    user_id: ID,
    /// Why (Better Auth's `banReason`; required).
    reason: String,
    /// When it ends; never when absent. Must be in the future.
    expires_at: Option<DateTime<Utc>>,
}

/// An action on a person that needs only a reason.
#[derive(InputObject)]
struct PersonActionInput {
    /// Whom.
    user_id: ID,
    /// Why (kept in the audit trail; required).
    reason: String,
}

/// A ban's outcome.
#[derive(SimpleObject)]
struct BanUserPayload {
    /// The person, banned.
    person: Person,
    /// Their sessions deleted (as Better Auth's `banUser` does).
    sessions_revoked: i32,
}

/// Sessions revoked.
#[derive(SimpleObject)]
struct RevokeSessionsPayload {
    /// How many sessions were deleted.
    sessions_revoked: i32,
}

/// A reason, trimmed: required, at most [`MAX_REASON`] characters.
pub(super) fn reason(text: &str) -> AppResult<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AppError::invalid_field("reason", "a reason is required"));
    }
    if text.chars().count() > MAX_REASON {
        return Err(AppError::invalid_field(
            "reason",
            format!("at most {MAX_REASON} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// The person `id`, their row locked until the transaction ends (so what the audit row
/// records as before is what the change changed); `NOT_FOUND` when there is none.
pub(super) async fn target(conn: &mut AsyncPgConnection, id: &str) -> AppResult<PersonRow> {
    admin::lock_person(conn, id).await?;
    admin::person(conn, id).await?.ok_or(AppError::NotFoundAt {
        what: "user",
        field: "userId".into(),
    })
}

/// What `staff` did to `target`, for the audit trail.
pub(super) fn action<'a>(
    staff: &'a Staff,
    target: &'a str,
    what: &'a str,
    reason: &'a str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> Action<'a> {
    Action {
        actor_id: &staff.user_id,
        actor_role: staff.role.as_str(),
        impersonating: false,
        target_id: Some(target),
        action: what,
        reason: Some(reason),
        before: Some(before),
        after: Some(after),
    }
}

/// The administration's mutations of people and their credits.
#[Object]
impl PeopleMutation {
    /// Grants credits to a person, or takes them back with a negative amount: a ledger entry of
    /// kind `ADJUSTMENT`, within the caller's grant limit (support's is
    /// `BFF_SUPPORT_GRANT_LIMIT_CENTS`).
    async fn grant_credits(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose account, how much, and why.")] input: GrantCreditsInput,
    ) -> async_graphql::Result<GrantCreditsPayload> {
        let staff = data::<Staff>(ctx, "staff")?;
        let why = reason(&input.reason)?;
        if input.user_id.0 == staff.user_id {
            return Err(
                AppError::invalid_field("userId", "you cannot grant credits to yourself").into(),
            );
        }
        let cents = input.amount.0;
        if cents == 0 {
            return Err(AppError::invalid_field("amount", "the amount cannot be zero").into());
        }
        if cents.unsigned_abs() > staff.grant_limit_cents.unsigned_abs() {
            return Err(AppError::invalid_field(
                "amount",
                format!(
                    "at most {} credits at once in your role",
                    Decimal(staff.grant_limit_cents)
                ),
            )
            .into());
        }
        let mut conn = conn(ctx).await?;
        let (balance, entry) = conn
            .transaction(async |conn| {
                let person = target(conn, &input.user_id).await?;
                let account = CreditAccount::lock(conn, &person.id).await?;
                let change = Change {
                    user_id: &person.id,
                    kind: CreditTransactionKind::Adjustment,
                    amount_cents: cents,
                    description: if cents > 0 {
                        "Credits added by support"
                    } else {
                        "Credits taken back by support"
                    },
                    photo_job_id: None,
                    purchase_id: None,
                };
                let Some(entry) = CreditAccount::apply_entry(conn, &change).await? else {
                    return Err(AppError::InsufficientCredits(format!(
                        "the balance is {}: at most that can be taken back",
                        Decimal(account.balance_cents)
                    )));
                };
                let balance = entry.balance_after_cents;
                audit::record(
                    conn,
                    &action(
                        staff,
                        &person.id,
                        "GRANT_CREDITS",
                        &why,
                        json!({ "balance": Decimal(account.balance_cents).to_string() }),
                        json!({ "balance": Decimal(balance).to_string(), "ledgerEntryId": entry.id }),
                    ),
                )
                .await?;
                Ok::<_, AppError>((balance, entry))
            })
            .await?;
        Ok(GrantCreditsPayload {
            balance: Decimal(balance),
            entry: LedgerRow(entry),
        })
    }

    /// Bans a person (admins only), as Better Auth's `banUser` does: `banned`, `banReason`,
    /// `banExpires`, and every session deleted. bff then refuses them on every path
    /// (`ACCOUNT_BANNED`) and closes their live connections.
    async fn ban_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whom, why, and until when.")] input: BanUserInput,
    ) -> async_graphql::Result<BanUserPayload> {
        let staff = data::<Staff>(ctx, "staff")?;
        staff.require_admin("ban people")?;
        let why = reason(&input.reason)?;
        if input.user_id.0 == staff.user_id {
            return Err(AppError::invalid_field("userId", "you cannot ban yourself").into());
        }
        if input.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(AppError::invalid_field("expiresAt", "must be in the future").into());
        }
        let mut conn = conn(ctx).await?;
        let (person, revoked) = conn
            .transaction(async |conn| {
                let before = target(conn, &input.user_id).await?;
                let revoked = admin::ban(conn, &before.id, &why, input.expires_at).await?;
                let after = target(conn, &before.id).await?;
                let mut after_state = admin::ban_state(&after);
                after_state["sessionsRevoked"] = json!(revoked);
                audit::record(
                    conn,
                    &action(
                        staff,
                        &before.id,
                        "BAN",
                        &why,
                        admin::ban_state(&before),
                        after_state,
                    ),
                )
                .await?;
                Ok::<_, AppError>((after, revoked))
            })
            .await?;
        Ok(BanUserPayload {
            person: Person(person),
            sessions_revoked: i32::try_from(revoked).unwrap_or(i32::MAX),
        })
    }

    /// Lifts a person's ban (admins only), as Better Auth's `unbanUser` does.
    async fn unban_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whom, and why.")] input: PersonActionInput,
    ) -> async_graphql::Result<Person> {
        let staff = data::<Staff>(ctx, "staff")?;
        staff.require_admin("lift bans")?;
        let why = reason(&input.reason)?;
        let mut conn = conn(ctx).await?;
        let person = conn
            .transaction(async |conn| {
                let before = target(conn, &input.user_id).await?;
                admin::unban(conn, &before.id).await?;
                let after = target(conn, &before.id).await?;
                audit::record(
                    conn,
                    &action(
                        staff,
                        &before.id,
                        "UNBAN",
                        &why,
                        admin::ban_state(&before),
                        admin::ban_state(&after),
                    ),
                )
                .await?;
                Ok::<_, AppError>(after)
            })
            .await?;
        Ok(Person(person))
    }

    /// Signs a person out everywhere (admins only): every Better Auth session deleted, their
    /// live connections closed at the next check. JWTs already issued last until they expire.
    async fn revoke_sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whom, and why.")] input: PersonActionInput,
    ) -> async_graphql::Result<RevokeSessionsPayload> {
        let staff = data::<Staff>(ctx, "staff")?;
        staff.require_admin("revoke sessions")?;
        let why = reason(&input.reason)?;
        let mut conn = conn(ctx).await?;
        let revoked = conn
            .transaction(async |conn| {
                let person = target(conn, &input.user_id).await?;
                let revoked = admin::revoke_sessions(conn, &person.id).await?;
                audit::record(
                    conn,
                    &action(
                        staff,
                        &person.id,
                        "REVOKE_SESSIONS",
                        &why,
                        json!({ "sessions": revoked }),
                        json!({ "sessions": 0 }),
                    ),
                )
                .await?;
                Ok::<_, AppError>(revoked)
            })
            .await?;
        Ok(RevokeSessionsPayload {
            sessions_revoked: i32::try_from(revoked).unwrap_or(i32::MAX),
        })
    }
}
