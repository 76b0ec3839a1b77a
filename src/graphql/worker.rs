//! The photo worker's operations. Only a service token may call them (`FORBIDDEN` for viewer
//! credentials, `UNAUTHENTICATED` without a valid token); they act on any user's jobs, and each
//! is one transaction.

use async_graphql::{Context, ID, Object};
use diesel_async::AsyncConnection;

use super::context::{conn, jobs, require_service};
use super::ids::{Kind, row_id};
use super::photo_jobs::PhotoJob;
use crate::db::photo_jobs::money;
use crate::db::photo_jobs::worker::{self, Outcome};
use crate::error::AppError;

/// Most jobs one claim may take.
pub const MAX_CLAIM: i32 = 50;
/// Longest download URL or failure reason.
const MAX_TEXT: usize = 2048;

fn job_id(id: &ID) -> Result<i64, AppError> {
    row_id(id, Kind::PhotoJob).ok_or(AppError::NotFound("photo job"))
}

fn check_https_url(url: &str) -> Result<(), AppError> {
    let host = url.strip_prefix("https://").unwrap_or("");
    let host = host.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.len() > MAX_TEXT || url.contains(char::is_whitespace) {
        return Err(AppError::bad_input(
            "downloadUrl must be an https:// URL with a host (at most 2048 characters)",
        ));
    }
    Ok(())
}

/// Operations for the photo worker (service token only).
#[derive(Default)]
pub struct WorkerMutation;

/// Operations for the photo worker (service token only).
#[Object]
impl WorkerMutation {
    /// Claims up to `limit` of the oldest PENDING jobs (any user's), moving them to
    /// PROCESSING, each leased to the caller until `leaseExpiresAt` (`BFF_WORKER_LEASE_MS`,
    /// 5 minutes): extend it with `heartbeatPhotoJob` while working. A job whose lease expires
    /// goes back to PENDING for another worker, and after `BFF_WORKER_MAX_ATTEMPTS` (3) claims
    /// it fails and is refunded. Jobs another worker is claiming at the same moment are
    /// skipped, so no two workers ever get the same job. Returns the claimed jobs, oldest
    /// first (possibly none).
    async fn claim_photo_jobs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1, desc = "How many jobs to claim, 1 to 50.")] limit: i32,
    ) -> async_graphql::Result<Vec<PhotoJob>> {
        require_service(ctx).await?;
        if !(1..=MAX_CLAIM).contains(&limit) {
            return Err(
                AppError::bad_input(format!("limit must be between 1 and {MAX_CLAIM}")).into(),
            );
        }
        let settings = jobs(ctx)?;
        let mut conn = conn(ctx).await?;
        // Jobs whose worker vanished are claimable again first.
        money::sweep_expired_leases(&mut conn, settings.worker_max_attempts)
            .await
            .map_err(AppError::from)?;
        let jobs = worker::claim(&mut conn, i64::from(limit), settings.worker_lease)
            .await
            .map_err(AppError::from)?;
        Ok(jobs.into_iter().map(PhotoJob::from).collect())
    }

    /// Extends the lease of a PROCESSING job by `BFF_WORKER_LEASE_MS` from now (call it well
    /// within the lease while working). CONFLICT in any other state (its lease expired and it
    /// went back to PENDING, or it was finished).
    async fn heartbeat_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's global id.")] id: ID,
    ) -> async_graphql::Result<PhotoJob> {
        require_service(ctx).await?;
        let id = job_id(&id)?;
        let lease = jobs(ctx)?.worker_lease;
        let mut conn = conn(ctx).await?;
        match worker::heartbeat(&mut conn, id, lease)
            .await
            .map_err(AppError::from)?
        {
            Some(job) => Ok(job.into()),
            None => Err(AppError::from(money::not_processing(&mut conn, id).await).into()),
        }
    }

    /// Marks a PROCESSING job COMPLETED with the https URL of its results. CONFLICT in any
    /// other state.
    async fn complete_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's global id.")] id: ID,
        #[graphql(desc = "https URL of the results.")] download_url: String,
    ) -> async_graphql::Result<PhotoJob> {
        require_service(ctx).await?;
        let id = job_id(&id)?;
        let download_url = download_url.trim();
        check_https_url(download_url)?;
        let mut conn = conn(ctx).await?;
        let outcome = Outcome::Completed { download_url };
        match worker::finish(&mut conn, id, outcome)
            .await
            .map_err(AppError::from)?
        {
            Some(job) => Ok(job.into()),
            None => Err(AppError::from(money::not_processing(&mut conn, id).await).into()),
        }
    }

    /// Marks a PROCESSING job FAILED with a reason the viewer will see, and refunds it exactly
    /// once (credits, free photos and usage). CONFLICT in any other state.
    async fn fail_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's global id.")] id: ID,
        #[graphql(desc = "Why it failed, for the viewer (1 to 2048 characters).")] reason: String,
    ) -> async_graphql::Result<PhotoJob> {
        require_service(ctx).await?;
        let id = job_id(&id)?;
        let reason = reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > MAX_TEXT {
            return Err(AppError::bad_input("reason must be 1 to 2048 characters").into());
        }
        let mut conn = conn(ctx).await?;
        let job = conn
            .transaction(async |conn| money::fail(conn, id, &reason).await)
            .await
            .map_err(AppError::from)?;
        Ok(job.into())
    }
}
