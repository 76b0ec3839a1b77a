//! Photo jobs across people: support lists them (stuck, failed…) and mends them. Each
//! mutation is one transaction under the owner's account lock, with one audit row.
//!
//! | mutation | from | to | money |
//! | --- | --- | --- | --- |
//! | `failPhotoJob` | PENDING, PROCESSING | FAILED ("Stopped by support") | refunded (credits, free photos, usage), once |
//! | `refundPhotoJob` | COMPLETED, not refunded | COMPLETED | refunded, once: a bad result |
//! | `retryPhotoJob` | PROCESSING (stuck or not) | PENDING, attempts afresh | its charge stands |
//!
//! A FAILED or CANCELED job was refunded already: it cannot be retried (the person creates it
//! again, or support grants the credits).

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde_json::json;

use super::mutation::{action, reason};
use super::staff::Staff;
use crate::db::admin::audit;
use crate::db::admin::jobs::{self, Filter};
use crate::db::photo_jobs::money;
use crate::db::photo_jobs::{PhotoJob, PhotoJobStatus};
use crate::error::{AppError, AppResult};
use crate::graphql::connection::{Totals, arguments, connection, page};
use crate::graphql::context::{conn, data, read};
use crate::graphql::ids::{Kind, global_id, row_id};
use crate::graphql::scalars::Decimal;

/// What the person reads on a job support stopped.
const STOPPED: &str = "Stopped by support";

/// Which jobs to list.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
enum JobFilter {
    /// Paid for and waiting for a worker.
    Pending,
    /// A worker holds it.
    Processing,
    /// PROCESSING past its lease: its worker stopped heartbeating.
    Stuck,
    /// Done.
    Completed,
    /// Failed (and refunded).
    Failed,
    /// Canceled (and refunded).
    Canceled,
}

impl From<JobFilter> for Filter {
    fn from(filter: JobFilter) -> Filter {
        match filter {
            JobFilter::Pending => Filter::Status(PhotoJobStatus::Pending),
            JobFilter::Processing => Filter::Status(PhotoJobStatus::Processing),
            JobFilter::Stuck => Filter::Stuck,
            JobFilter::Completed => Filter::Status(PhotoJobStatus::Completed),
            JobFilter::Failed => Filter::Status(PhotoJobStatus::Failed),
            JobFilter::Canceled => Filter::Status(PhotoJobStatus::Canceled),
        }
    }
}

/// A photo job of anyone.
pub(crate) struct Job(pub(crate) PhotoJob);

/// A photo job of anyone.
#[Object]
impl Job {
    /// Its global id, the same the person's app shows.
    async fn id(&self) -> ID {
        global_id(Kind::PhotoJob, self.0.id)
    }
    /// Whose job.
    async fn user_id(&self) -> &str {
        &self.0.user_id
    }
    /// Its status: `PENDING`, `PROCESSING`, `COMPLETED`, `FAILED` or `CANCELED`.
    async fn status(&self) -> &'static str {
        self.0.status.as_db()
    }
    /// Photos in it.
    async fn photo_count(&self) -> i32 {
        self.0.photo_count
    }
    /// Credits it was charged.
    async fn cost(&self) -> Decimal {
        Decimal(self.0.cost_cents)
    }
    /// Claims by workers so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// Why it failed, as the person reads it.
    async fn failure_reason(&self) -> Option<&str> {
        self.0.failure_reason.as_deref()
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When a worker last claimed it.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    /// When it ended.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// When its worker's lease runs out (PROCESSING only).
    async fn lease_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.lease_expires_at
    }
}

/// Jobs across people are not counted.
pub(crate) struct JobTotals;

impl Totals for JobTotals {
    async fn total_count(&self, _ctx: &Context<'_>) -> AppResult<i64> {
        Err(AppError::bad_input(
            "totalCount is not counted across people; use stats, or page with after",
        ))
    }
}

connection!(
    JobConnection,
    JobEdge,
    Job,
    JobTotals,
    "photo jobs of everyone, newest first"
);

/// The administration's queries about jobs.
#[derive(Default)]
pub struct JobQuery;

/// The administration's queries about jobs.
#[Object]
impl JobQuery {
    /// Photo jobs of everyone, newest first: all, or those in one state (`STUCK`: processing
    /// past the lease), created since a time when given.
    async fn photo_jobs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only jobs in this state.")] status: Option<JobFilter>,
        #[graphql(desc = "Only jobs created at or after this time.")] since: Option<DateTime<Utc>>,
        #[graphql(default = 20, desc = "How many, 0 to 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<JobConnection> {
        data::<Staff>(ctx, "staff")?;
        let (first, after) = arguments(first, after.as_deref())?;
        let conn = read(ctx).await?;
        let rows = jobs::page(
            &mut &**conn,
            None,
            status.map(Filter::from),
            since,
            after,
            first + 1,
        )
        .await
        .map_err(AppError::from)?;
        let (edges, info) = page(rows, first, after, PhotoJob::cursor, Job);
        Ok(JobConnection::new(edges, info, JobTotals))
    }
}

/// A job and why.
#[derive(InputObject)]
struct JobActionInput {
    /// The job's id (as the person's app shows it).
    job_id: ID,
    /// Why (kept in the audit trail; required).
    reason: String,
}

/// What support does to a job.
#[derive(Clone, Copy, Debug)]
enum Act {
    Fail,
    Refund,
    Retry,
}

impl Act {
    /// As the audit trail names it.
    fn name(self) -> &'static str {
        match self {
            Act::Fail => "FAIL_JOB",
            Act::Refund => "REFUND_JOB",
            Act::Retry => "RETRY_JOB",
        }
    }

    /// Does it to `job` (locked), in the caller's transaction.
    async fn apply(
        self,
        conn: &mut diesel_async::AsyncPgConnection,
        job: PhotoJob,
    ) -> AppResult<PhotoJob> {
        match self {
            Act::Fail => {
                if !matches!(
                    job.status,
                    PhotoJobStatus::Pending | PhotoJobStatus::Processing
                ) {
                    return Err(conflict(
                        &job,
                        "only a pending or processing job can be stopped",
                    ));
                }
                let failed = jobs::fail(conn, job.id, STOPPED).await?;
                money::refund(conn, &failed, "Refund: photo job stopped by support").await?;
                Ok(failed)
            }
            Act::Refund => {
                if job.status != PhotoJobStatus::Completed {
                    return Err(conflict(
                        &job,
                        "only a completed job can be refunded (failed and canceled ones were)",
                    ));
                }
                if jobs::refunded(conn, job.id).await? {
                    return Err(AppError::Conflict("the job was refunded already".into()));
                }
                money::refund(conn, &job, "Refund: photo job result refunded by support").await?;
                Ok(job)
            }
            Act::Retry => {
                if job.status != PhotoJobStatus::Processing {
                    return Err(conflict(
                        &job,
                        "only a processing job can be retried (a failed one was refunded: the person creates it again)",
                    ));
                }
                Ok(jobs::requeue(conn, job.id).await?)
            }
        }
    }
}

/// Does `act` to the job `input` names, locked, in one transaction with its audit row (the
/// job's status before and after, and whether it is refunded).
async fn act(ctx: &Context<'_>, input: JobActionInput, act: Act) -> async_graphql::Result<Job> {
    let staff = data::<Staff>(ctx, "staff")?;
    let why = reason(&input.reason)?;
    let not_found = || AppError::NotFoundAt {
        what: "photo job",
        field: "jobId".into(),
    };
    let id = row_id(&input.job_id, Kind::PhotoJob).ok_or_else(not_found)?;
    let mut conn = conn(ctx).await?;
    let job = conn
        .transaction(async |conn| {
            let before = jobs::lock(conn, id).await?.ok_or_else(not_found)?;
            let owner = before.user_id.clone();
            let status = before.status;
            let after = act.apply(conn, before).await?;
            let refunded = jobs::refunded(conn, id).await?;
            audit::record(
                conn,
                &action(
                    staff,
                    &owner,
                    act.name(),
                    &why,
                    json!({ "jobId": id, "status": status.as_db() }),
                    json!({ "jobId": id, "status": after.status.as_db(), "refunded": refunded }),
                ),
            )
            .await?;
            Ok::<_, AppError>(after)
        })
        .await?;
    Ok(Job(job))
}

/// `CONFLICT`: `job` is not in a state `what` applies to.
fn conflict(job: &PhotoJob, what: &str) -> AppError {
    AppError::Conflict(format!("the job is {}: {what}", job.status.as_db()))
}

/// The administration's mutations of jobs.
#[derive(Default)]
pub struct JobMutation;

/// The administration's mutations of jobs.
#[Object]
impl JobMutation {
    /// Stops a PENDING or PROCESSING job: FAILED ("Stopped by support") and refunded in full.
    /// A worker still holding it is refused when it reports.
    async fn fail_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which job, and why.")] input: JobActionInput,
    ) -> async_graphql::Result<Job> {
        act(ctx, input, Act::Fail).await
    }

    /// Refunds a COMPLETED job whose result was bad: its credits, free photos and usage
    /// given back, once. The job stays COMPLETED.
    async fn refund_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which job, and why.")] input: JobActionInput,
    ) -> async_graphql::Result<Job> {
        act(ctx, input, Act::Refund).await
    }

    /// Puts a PROCESSING job (stuck past its lease, or not) back in the queue for another
    /// worker, its attempts counted afresh; its charge stands.
    async fn retry_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which job, and why.")] input: JobActionInput,
    ) -> async_graphql::Result<Job> {
        act(ctx, input, Act::Retry).await
    }
}
