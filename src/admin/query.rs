//! What support reads: people, one person's account, the business's figures, the audit trail.

use async_graphql::{Context, ID, Object};

use super::account::Account;
use super::staff::Staff;
use super::types::{
    AuditEntry, AuditEntryConnection, AuditTotals, Count, PeopleTotals, Person, PersonConnection,
    Stats,
};
use crate::db::admin::{self, PersonCursor};
use crate::db::credits::CreditAccount;
use crate::error::AppError;
use crate::graphql::connection::{arguments, page};
use crate::graphql::context::{data, read};
use crate::graphql::scalars::Decimal;

/// The administration's queries about people, the business and the audit trail.
#[derive(Default)]
pub struct PeopleQuery;

/// Who is acting.
#[derive(async_graphql::SimpleObject)]
struct Me {
    /// Their user id.
    id: ID,
    /// Their email.
    email: String,
    /// The role they act in.
    role: super::staff::Role,
    /// The most credits they may grant or take back in one action.
    grant_limit: Decimal,
}

/// The administration's queries about people, the business and the audit trail.
#[Object]
impl PeopleQuery {
    /// Who is asking, in which role.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let staff = data::<Staff>(ctx, "staff")?;
        Ok(Me {
            id: ID(staff.user_id.clone()),
            email: staff.email.clone(),
            role: staff.role,
            grant_limit: Decimal(staff.grant_limit_cents),
        })
    }

    /// People, newest first: all of them, or those `search` finds — the person with that id
    /// or Stripe customer id (`cus_…`), and those whose email or name starts with it
    /// (case-insensitively).
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "An id, a Stripe customer id, or the start of an email or name.")]
        search: Option<String>,
        #[graphql(default = 20, desc = "How many, 0 to 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<PersonConnection> {
        data::<Staff>(ctx, "staff")?;
        let (first, _) = arguments(first, None)?;
        let after = match after.as_deref() {
            Some(text) => Some(
                PersonCursor::decode(text)
                    .ok_or_else(|| AppError::bad_input("after is not a cursor from this list"))?,
            ),
            None => None,
        };
        let conn = read(ctx).await?;
        let rows = admin::people(&mut &**conn, search.as_deref(), after.as_ref(), first + 1)
            .await
            .map_err(AppError::from)?;
        let has_next_page = rows.len() as i64 > first;
        let edges: Vec<(String, Person)> = rows
            .into_iter()
            .take(usize::try_from(first).unwrap_or(0))
            .map(|row| (PersonCursor::of(&row).encode(), Person(row)))
            .collect();
        let info = crate::graphql::connection::PageInfo {
            has_next_page,
            has_previous_page: after.is_some(),
            start_cursor: edges.first().map(|(c, _)| c.clone()),
            end_cursor: edges.last().map(|(c, _)| c.clone()),
        };
        Ok(PersonConnection::new(edges, info, PeopleTotals { search }))
    }

    /// One person's whole account; null when there is no such person.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Their user id.")] id: ID,
    ) -> async_graphql::Result<Option<Account>> {
        data::<Staff>(ctx, "staff")?;
        let conn = read(ctx).await?;
        let Some(person) = admin::person(&mut &**conn, &id)
            .await
            .map_err(AppError::from)?
        else {
            return Ok(None);
        };
        let credits = CreditAccount::find_or_empty(&mut &**conn, &person.id)
            .await
            .map_err(AppError::from)?;
        Ok(Some(Account { person, credits }))
    }

    /// The business at a glance.
    async fn stats(&self, ctx: &Context<'_>) -> async_graphql::Result<Stats> {
        data::<Staff>(ctx, "staff")?;
        let conn = read(ctx).await?;
        let s = admin::stats(&mut &**conn).await.map_err(AppError::from)?;
        let counts = |rows: Vec<admin::account::Counted>| -> Vec<Count> {
            rows.into_iter()
                .map(|c| Count {
                    name: c.name,
                    detail: c.detail,
                    count: c.count,
                })
                .collect()
        };
        let subscriptions = admin::account::subscriptions_by_plan(&mut &**conn)
            .await
            .map_err(AppError::from)?;
        let jobs = admin::account::jobs_last_day(&mut &**conn)
            .await
            .map_err(AppError::from)?;
        Ok(Stats {
            people: s.people,
            active_people: s.active_people,
            banned_people: s.banned_people,
            credits_sold: Decimal(s.credits_sold_cents),
            credits_refunded: Decimal(s.credits_refunded_cents),
            photo_jobs_last_day: s.jobs_last_day,
            subscriptions: counts(subscriptions),
            photo_jobs_last_day_by_status: counts(jobs),
        })
    }

    /// The audit trail, newest first: everything, or one actor's actions, or what was done
    /// to one person.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many, 0 to 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only this actor's actions (a user id, or `cli:…`).")] actor_id: Option<
            ID,
        >,
        #[graphql(desc = "Only actions about this person.")] target_id: Option<ID>,
    ) -> async_graphql::Result<AuditEntryConnection> {
        data::<Staff>(ctx, "staff")?;
        let (first, after) = arguments(first, after.as_deref())?;
        let actor_id = actor_id.map(|id| id.0);
        let target_id = target_id.map(|id| id.0);
        let conn = read(ctx).await?;
        let rows = admin::audit::page(
            &mut &**conn,
            actor_id.as_deref(),
            target_id.as_deref(),
            after,
            first + 1,
        )
        .await
        .map_err(AppError::from)?;
        let (edges, info) = page(rows, first, after, |e| e.cursor(), AuditEntry);
        Ok(AuditEntryConnection::new(
            edges,
            info,
            AuditTotals {
                actor_id,
                target_id,
            },
        ))
    }
}
