//! Photo jobs as the viewer sees them.

use std::collections::HashMap;

pub(crate) use crate::db::photo_jobs::PhotoJobStatus;
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::connection::{Totals, arguments, connection, page};
use super::context::{self, read};
use super::ids::{Kind, global_id};
use super::scalars::Decimal;
use super::uploads::{self, Photo};
use crate::db::photo_jobs::money::{MoneyError, Operation};
use crate::db::photo_jobs::{Filter, PhotoJob as Row};
use crate::db::uploads::{self as UploadRow, Upload};
use crate::error::{AppError, AppResult};

/// Longest group name, in characters.
pub(crate) const MAX_GROUP_NAME: usize = 140;

/// A request to process a batch of photos with a prompt: the row, when it was deleted (in the
/// event that tells of it), and its photos when the page that holds it read them at once.
pub(crate) struct PhotoJob(pub Row, pub Option<DateTime<Utc>>, pub Option<Vec<Upload>>);

impl From<Row> for PhotoJob {
    fn from(row: Row) -> Self {
        PhotoJob(row, None, None)
    }
}

/// A request to process a batch of photos with a prompt.
#[Object]
impl PhotoJob {
    /// The job's opaque global id.
    pub async fn id(&self) -> ID {
        global_id(Kind::PhotoJob, self.0.id)
    }
    /// What to do with the photos.
    async fn prompt(&self) -> &str {
        &self.0.prompt
    }
    /// How many photos the job processes.
    async fn photo_count(&self) -> i32 {
        self.0.photo_count
    }
    /// Credits charged for the job (photos from the free allowance cost nothing).
    async fn cost(&self) -> Decimal {
        Decimal(self.0.cost_cents)
    }
    /// How many of the photos were paid from the free allowance.
    async fn free_photos_applied(&self) -> i32 {
        self.0.free_photos_applied
    }
    /// Where the job is in its life.
    async fn status(&self) -> PhotoJobStatus {
        self.0.status
    }
    /// Where to download the result, once COMPLETED: a presigned `GET` of the result object,
    /// minted for this response and valid for minutes (`BFF_PRESIGNED_URL_SECONDS`); without
    /// storage, the URL the worker gave.
    async fn download_url(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        if let Some(key) = &self.0.result_key
            && let Some(url) = uploads::result_url(ctx, self.0.id, key)?
        {
            return Ok(Some(url));
        }
        Ok(self.0.download_url.clone())
    }
    /// The photos the job processes, in order, each with a presigned `GET` minted for this
    /// response (empty without storage, and for jobs created with a bare `photoCount`).
    async fn photos(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Photo>> {
        if let Some(photos) = &self.2 {
            return Ok(photos.iter().cloned().map(Photo).collect());
        }
        Ok(uploads::photos_of_job(ctx, &self.0.user_id, self.0.id).await?)
    }
    /// The viewer's label for organising jobs (at most 140 characters).
    async fn group_name(&self) -> Option<&str> {
        self.0.group_name.as_deref()
    }
    /// Why the job failed, if it did.
    async fn failure_reason(&self) -> Option<&str> {
        self.0.failure_reason.as_deref()
    }
    /// When the job was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the job last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When a worker started processing it.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    /// When it completed, failed or was canceled.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// While PROCESSING: when the worker's lease runs out unless it sends a heartbeat (then
    /// the job goes back to PENDING, or fails after its last attempt).
    async fn lease_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.lease_expires_at
    }
    /// How many times a worker has claimed the job.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// While PROCESSING, how far its worker is, once it has said (null otherwise): never
    /// backwards, and cleared when the job completes, fails or goes back to the queue.
    async fn progress(&self) -> Option<PhotoJobProgress> {
        Some(PhotoJobProgress {
            done: self.0.progress_done?,
            total: self.0.progress_total?,
            stage: self.0.progress_stage.clone(),
            updated_at: self.0.progress_at?,
        })
    }
    /// Set only in the `photoJobUpdated` event that tells of the job's deletion (the job as it
    /// was then); always null in queries.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.1
    }
}

/// How far a worker is with a job.
#[derive(async_graphql::SimpleObject)]
pub(crate) struct PhotoJobProgress {
    /// Photos done.
    done: i32,
    /// Of how many.
    total: i32,
    /// What the worker is doing, in its words (`"Upscaling"`), when it said.
    stage: Option<String>,
    /// When the worker reported it.
    updated_at: DateTime<Utc>,
}

/// Which of the viewer's photo jobs to list.
#[derive(InputObject, Default)]
pub(crate) struct PhotoJobFilter {
    /// Only jobs in one of these statuses.
    pub statuses: Option<Vec<PhotoJobStatus>>,
    /// Only jobs in this group (exact match).
    pub group_name: Option<String>,
}

/// Counts the viewer's jobs matching the filter, only when `totalCount` is selected (then
/// usually already counted by the page's own statement).
pub(crate) struct PhotoJobTotals {
    user_id: String,
    filter: Filter,
    counted: Option<i64>,
}

impl Totals for PhotoJobTotals {
    async fn total_count(&self, ctx: &Context<'_>) -> AppResult<i64> {
        if let Some(count) = self.counted {
            return Ok(count);
        }
        let conn = read(ctx).await?;
        Ok(Row::count(&mut &**conn, &self.user_id, &self.filter).await?)
    }
}

connection!(
    PhotoJobConnection,
    PhotoJobEdge,
    PhotoJob,
    PhotoJobTotals,
    "the viewer's photo jobs, newest first"
);

/// The viewer's photo jobs, newest first.
pub(crate) async fn list(
    ctx: &Context<'_>,
    user_id: &str,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<PhotoJobFilter>,
) -> AppResult<PhotoJobConnection> {
    let (first, after) = arguments(first, after.as_deref())?;
    let filter = filter.unwrap_or_default();
    if filter
        .group_name
        .as_ref()
        .is_some_and(|g| g.chars().count() > MAX_GROUP_NAME)
    {
        return Err(AppError::bad_input(format!(
            "groupName is at most {MAX_GROUP_NAME} characters"
        )));
    }
    let filter = Filter {
        statuses: filter.statuses.map(|s| s.into_iter().collect()),
        group_name: filter.group_name,
    };
    let conn = read(ctx).await?;
    // With `totalCount` selected, the page and the count are one statement.
    let (rows, counted) = if ctx.look_ahead().field("totalCount").exists() {
        let (rows, count) =
            Row::page_with_count(&mut &**conn, user_id, &filter, after, first + 1).await?;
        (rows, Some(count))
    } else {
        (
            Row::page(&mut &**conn, user_id, &filter, after, first + 1).await?,
            None,
        )
    };
    // With `photos` selected, the page's photos are one statement, not one per job.
    let look = ctx.look_ahead();
    let wants_photos = look.field("nodes").field("photos").exists()
        || look.field("edges").field("node").field("photos").exists();
    let mut photos: Option<HashMap<i64, Vec<Upload>>> =
        if wants_photos && context::photos(ctx)?.store().is_some() {
            let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
            let mut by_job: HashMap<i64, Vec<Upload>> = HashMap::new();
            for upload in UploadRow::photos_of_jobs(&mut &**conn, user_id, &ids).await? {
                if let Some(job) = upload.photo_job_id {
                    by_job.entry(job).or_default().push(upload);
                }
            }
            Some(by_job)
        } else {
            None
        };
    let with_photos = |row: Row| {
        let mine = photos
            .as_mut()
            .map(|all| all.remove(&row.id).unwrap_or_default());
        PhotoJob(row, None, mine)
    };
    let (edges, info) = page(rows, first, after, Row::cursor, with_photos);
    let totals = PhotoJobTotals {
        user_id: user_id.to_owned(),
        filter,
        counted,
    };
    Ok(PhotoJobConnection::new(edges, info, totals))
}

/// A refusal of the money path, in words a person can act on (and the input field it is
/// about, when there is one).
impl From<MoneyError> for AppError {
    fn from(error: MoneyError) -> Self {
        match error {
            MoneyError::TooManyPhotos { plan, max } => AppError::invalid_field(
                "photoCount",
                format!("the {plan} plan allows at most {max} photos per job"),
            ),
            MoneyError::QuotaExceeded {
                needed,
                remaining,
                quota,
                plan,
                until,
            } => AppError::QuotaExceeded(format!(
                "this job needs {needed} photos but only {remaining} of the {plan} plan's \
                 {quota} remain until {}; upgrade the plan or wait for the next period",
                until.to_rfc3339()
            )),
            MoneyError::InsufficientCredits {
                cost_cents,
                balance_cents,
            } => AppError::InsufficientCredits(format!(
                "this job costs {} credits but the balance is {}; buy credits or process fewer photos",
                Decimal(cost_cents),
                Decimal(balance_cents)
            )),
            MoneyError::UploadTaken => AppError::invalid_field(
                "uploadIds",
                "one of the uploads was attached to another job meanwhile; upload it again",
            ),
            MoneyError::IdempotencyKeyReused => AppError::Conflict(
                "this idempotencyKey was already used for a different job; use a new key".into(),
            ),
            MoneyError::NotFound => AppError::NotFound("photo job"),
            MoneyError::WrongState { operation, status } => AppError::Conflict(match operation {
                Operation::Cancel => {
                    format!("only PENDING jobs can be canceled; this job is {status}")
                }
                Operation::Delete => {
                    format!("a PROCESSING job cannot be deleted; this job is {status}")
                }
                Operation::Finish => {
                    format!("only PROCESSING jobs can be finished; this job is {status}")
                }
            }),
            MoneyError::Database(error) => error.into(),
        }
    }
}
