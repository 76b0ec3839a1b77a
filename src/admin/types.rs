//! The administration schema's objects: a person, their account, the audit trail.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::config::admin::roles;
use crate::db::admin::audit::Entry;
use crate::db::admin::{self, Person as PersonRow};
use crate::db::credits::LedgerEntry;
use crate::graphql::connection::{Totals, connection};
use crate::graphql::context::read;
use crate::graphql::scalars::Decimal;

/// A person, as support sees them.
pub(crate) struct Person(pub(crate) PersonRow);

/// A person, as support sees them.
#[Object]
impl Person {
    /// Their Better Auth user id.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Email address.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// Whether the email was verified.
    async fn email_verified(&self) -> bool {
        self.0.email_verified
    }
    /// When they signed up.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Their Better Auth roles (`user.role`).
    async fn roles(&self) -> Vec<String> {
        roles(self.0.role.as_deref().unwrap_or_default())
    }
    /// The ban that holds now, if any (an expired one is none).
    async fn ban(&self) -> Option<Ban> {
        self.0.banned.then(|| Ban {
            reason: self.0.ban_reason.clone(),
            expires_at: self.0.ban_expires,
        })
    }
    /// Their Stripe customer, once they have paid for anything.
    async fn stripe_customer_id(&self) -> Option<&str> {
        self.0.stripe_customer_id.as_deref()
    }
}

/// A ban in force.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct Ban {
    /// Why, as the admin wrote it (Better Auth's `banReason`).
    reason: Option<String>,
    /// When it ends; never when null.
    expires_at: Option<DateTime<Utc>>,
}

/// A count of something, by name.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct Count {
    /// What is counted: a plan, a status.
    pub(crate) name: String,
    /// A second key where there is one (a subscription's status).
    pub(crate) detail: Option<String>,
    /// How many.
    pub(crate) count: i64,
}

/// A change to a person's credits.
pub(crate) struct LedgerRow(pub(crate) LedgerEntry);

/// A change to a person's credits.
#[Object]
impl LedgerRow {
    /// The ledger row's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Why the balance changed (`ADJUSTMENT` for support's grants).
    async fn kind(&self) -> crate::db::credits::CreditTransactionKind {
        self.0.kind
    }
    /// The change.
    async fn amount(&self) -> Decimal {
        Decimal(self.0.amount_cents)
    }
    /// The balance after it.
    async fn balance_after(&self) -> Decimal {
        Decimal(self.0.balance_after_cents)
    }
    /// What the person reads.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Counts the people a search finds, only when `totalCount` is selected.
pub(crate) struct PeopleTotals {
    pub(crate) search: Option<String>,
}

impl Totals for PeopleTotals {
    async fn total_count(&self, ctx: &Context<'_>) -> crate::error::AppResult<i64> {
        let conn = read(ctx).await?;
        Ok(admin::count_people(&mut &**conn, self.search.as_deref()).await?)
    }
}

connection!(
    PersonConnection,
    PersonEdge,
    Person,
    PeopleTotals,
    "people, newest first"
);

/// A row of the audit trail.
pub(crate) struct AuditEntry(pub(crate) Entry);

/// What someone who runs the app did, and to whom.
#[Object]
impl AuditEntry {
    /// The row's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// When.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// Who acted: a user id, or `cli:…` for `bff admin`.
    async fn actor_id(&self) -> &str {
        &self.0.actor_id
    }
    /// The role they acted in (`admin`, `support`, `cli`).
    async fn actor_role(&self) -> &str {
        &self.0.actor_role
    }
    /// Whether it was an admin's impersonation session acting as the target.
    async fn impersonating(&self) -> bool {
        self.0.impersonating
    }
    /// Whom it was about (`deleted_…` once they deleted their account).
    async fn target_id(&self) -> Option<&str> {
        self.0.target_id.as_deref()
    }
    /// What was done: `GRANT_CREDITS`, `BAN`, `UNBAN`, `REVOKE_SESSIONS`, `CHANGE_PLAN`,
    /// `FAIL_JOB`, `REFUND_JOB`, `RETRY_JOB`, `GRANT_ROLE`, `REVOKE_ROLE`, or
    /// `IMPERSONATED_READ` / `IMPERSONATED_WRITE` /
    /// `IMPERSONATED_CONNECTION` for a request or WebSocket connection of an impersonation
    /// session.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// Why, in the actor's words.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// The state it changed, before (JSON).
    async fn before(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.before.clone().map(async_graphql::Json)
    }
    /// The state it changed, after (JSON).
    async fn after(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.after.clone().map(async_graphql::Json)
    }
}

/// Counts audit rows, only when `totalCount` is selected.
pub(crate) struct AuditTotals {
    pub(crate) actor_id: Option<String>,
    pub(crate) target_id: Option<String>,
}

impl Totals for AuditTotals {
    async fn total_count(&self, ctx: &Context<'_>) -> crate::error::AppResult<i64> {
        let conn = read(ctx).await?;
        Ok(admin::audit::count(
            &mut &**conn,
            self.actor_id.as_deref(),
            self.target_id.as_deref(),
        )
        .await?)
    }
}

connection!(
    AuditEntryConnection,
    AuditEntryEdge,
    AuditEntry,
    AuditTotals,
    "the audit trail, newest first"
);

/// The business at a glance.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct Stats {
    /// People signed up.
    pub(crate) people: i64,
    /// People with a session active in the last 30 days.
    pub(crate) active_people: i64,
    /// People whose ban holds.
    pub(crate) banned_people: i64,
    /// Credits bought in the last 30 days.
    pub(crate) credits_sold: Decimal,
    /// Credits taken back for refunded payments in the last 30 days.
    pub(crate) credits_refunded: Decimal,
    /// Photo jobs created in the last 24 hours.
    pub(crate) photo_jobs_last_day: i32,
    /// Subscriptions by plan (`name`) and status (`detail`).
    pub(crate) subscriptions: Vec<Count>,
    /// Photo jobs created in the last 24 hours, by status (`name`).
    pub(crate) photo_jobs_last_day_by_status: Vec<Count>,
}
