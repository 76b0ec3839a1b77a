//! The photo worker's operations. Only a service token may call them (`FORBIDDEN` for viewer
//! credentials, `UNAUTHENTICATED` without a valid token); they act on any user's jobs, and each
//! is one transaction.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::Utc;
use diesel_async::AsyncConnection;

use super::context::{conn, jobs, photos, require_service};
use super::ids::{Kind, row_id};
use super::photo_jobs::PhotoJob;
use super::uploads::{PhotoUpload, store};
use crate::db::photo_jobs::money;
use crate::db::photo_jobs::worker::{self, Outcome};
use crate::db::uploads::{self, NewUpload, UploadPurpose};
use crate::error::AppError;
use crate::storage::kinds::{self, RESULT_TYPES};

/// Most jobs one claim may take.
pub(crate) const MAX_CLAIM: i32 = 50;
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

/// The result a worker is about to upload.
#[derive(InputObject)]
pub(crate) struct PhotoJobResultInput {
    /// `application/zip` (the processed photos), or a photo type for a one-photo result.
    pub content_type: String,
    /// Its size in bytes: 1 to `BFF_RESULT_MAX_BYTES`.
    pub byte_size: i64,
}

/// Longest progress stage name, in characters.
const MAX_STAGE: usize = 100;

/// How far a worker is with a job, reported with its heartbeat.
#[derive(InputObject)]
pub(crate) struct PhotoJobProgressInput {
    /// Photos done: 0 to `total`.
    pub done: i32,
    /// Of how many: at least 1.
    pub total: i32,
    /// What it is doing, in words the person reads (`"Upscaling"`; at most 100 characters).
    pub stage: Option<String>,
}

impl PhotoJobProgressInput {
    /// The report, checked.
    fn checked(self) -> Result<worker::Progress, AppError> {
        if self.total < 1 {
            return Err(AppError::invalid_field(
                "progress.total",
                "total must be at least 1",
            ));
        }
        if !(0..=self.total).contains(&self.done) {
            return Err(AppError::invalid_field(
                "progress.done",
                "done must be between 0 and total",
            ));
        }
        let stage = self
            .stage
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if stage
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_STAGE || s.chars().any(char::is_control))
        {
            return Err(AppError::invalid_field(
                "progress.stage",
                format!("stage must be at most {MAX_STAGE} characters of text"),
            ));
        }
        Ok(worker::Progress {
            done: self.done,
            total: self.total,
            stage,
        })
    }
}

/// Operations for the photo worker (service token only).
#[derive(Default)]
pub(crate) struct WorkerMutation;

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
    /// within the lease while working), and records its `progress` when given: the person sees
    /// it as `PhotoJob.progress`, live at most every `BFF_LIVE_PROGRESS_INTERVAL_MS`. Progress
    /// never goes backwards: a report with fewer photos done, or a smaller share, than the one
    /// recorded is ignored (the lease is still extended). It is cleared when the job leaves
    /// PROCESSING. CONFLICT in any other state (its lease expired and it went back to PENDING,
    /// or it was finished).
    async fn heartbeat_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's global id.")] id: ID,
        #[graphql(desc = "How far the worker is, when it knows.")] progress: Option<
            PhotoJobProgressInput,
        >,
    ) -> async_graphql::Result<PhotoJob> {
        require_service(ctx).await?;
        let id = job_id(&id)?;
        let progress = progress.map(PhotoJobProgressInput::checked).transpose()?;
        let lease = jobs(ctx)?.worker_lease;
        let mut conn = conn(ctx).await?;
        match worker::heartbeat(&mut conn, id, lease, progress.as_ref())
            .await
            .map_err(AppError::from)?
        {
            Some(job) => Ok(job.into()),
            None => Err(AppError::from(money::not_processing(&mut conn, id).await).into()),
        }
    }

    /// Where to upload a PROCESSING job's result (a ZIP of the processed photos, or one
    /// photo): a presigned `PUT` for exactly `byteSize` bytes of `contentType`, under the
    /// job's owner's key. Asking again replaces the earlier result upload. Then call
    /// `completePhotoJob`. CONFLICT in any other state; SERVICE_UNAVAILABLE without storage.
    async fn create_photo_job_result_upload(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's global id.")] id: ID,
        #[graphql(desc = "The result to upload.")] input: PhotoJobResultInput,
    ) -> async_graphql::Result<PhotoUpload> {
        require_service(ctx).await?;
        let id = job_id(&id)?;
        let store = store(ctx)?;
        let settings = &photos(ctx)?.settings;
        let content_type = kinds::accepted(&input.content_type, RESULT_TYPES).ok_or_else(|| {
            AppError::invalid_field(
                "contentType",
                format!("contentType must be one of {}", RESULT_TYPES.join(", ")),
            )
        })?;
        if !(1..=settings.result_max_bytes).contains(&input.byte_size) {
            return Err(AppError::invalid_field(
                "byteSize",
                format!(
                    "byteSize must be between 1 and {} bytes",
                    settings.result_max_bytes
                ),
            )
            .into());
        }
        let expires_at = Utc::now()
            + chrono::Duration::from_std(settings.url_lifetime).unwrap_or_default()
            + chrono::Duration::seconds(1);
        let mut conn = conn(ctx).await?;
        let row = conn
            .transaction(async |conn| {
                let Some(job) = worker::lock_processing(conn, id).await? else {
                    return Err(AppError::from(money::not_processing(conn, id).await));
                };
                let extension = kinds::extension(content_type);
                let key = format!("{}.{extension}", store.result_key(&job.user_id, job.id));
                let file_name = format!("photo-job-{}.{extension}", job.id);
                let upload = NewUpload {
                    user_id: &job.user_id,
                    purpose: UploadPurpose::Result,
                    photo_job_id: Some(job.id),
                    object_key: key,
                    file_name: &file_name,
                    content_type,
                    byte_size: input.byte_size,
                    url_expires_at: expires_at,
                };
                Ok(uploads::replace_result(conn, &upload).await?)
            })
            .await?;
        Ok(PhotoUpload::new(store, row))
    }

    /// Marks a PROCESSING job COMPLETED. With storage, its result must have been uploaded
    /// (`createPhotoJobResultUpload`): bff checks the object exists with the declared size
    /// and type, and `downloadUrl` is refused. Without storage, `downloadUrl` is the https URL
    /// of the results. CONFLICT in any other state.
    async fn complete_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's global id.")] id: ID,
        #[graphql(desc = "Without storage only: https URL of the results.")] download_url: Option<
            String,
        >,
    ) -> async_graphql::Result<PhotoJob> {
        require_service(ctx).await?;
        let id = job_id(&id)?;
        let store = photos(ctx)?.store().cloned();
        let mut conn = conn(ctx).await?;
        let (download_url, result_key) = match (&store, download_url) {
            (Some(_), Some(_)) => {
                return Err(AppError::invalid_field(
                    "downloadUrl",
                    "this server stores results: upload it with createPhotoJobResultUpload and                      complete the job without downloadUrl",
                )
                .into());
            }
            (None, None) => {
                return Err(AppError::invalid_field(
                    "downloadUrl",
                    "downloadUrl is required: this server has no photo storage",
                )
                .into());
            }
            (None, Some(url)) => {
                let url = url.trim().to_owned();
                check_https_url(&url)?;
                (Some(url), None)
            }
            (Some(store), None) => {
                let Some(owner) = worker::owner(&mut conn, id).await.map_err(AppError::from)?
                else {
                    return Err(AppError::NotFound("photo job").into());
                };
                let result = uploads::result_of_job(&mut conn, &owner, id)
                    .await
                    .map_err(AppError::from)?
                    .ok_or_else(|| {
                        AppError::bad_input(
                            "no result was uploaded: call createPhotoJobResultUpload and PUT the                              result first",
                        )
                    })?;
                // The store is asked without holding the connection's transaction open.
                match store
                    .probe(&result.object_key)
                    .await
                    .map_err(AppError::from)?
                {
                    None => {
                        return Err(AppError::bad_input(
                            "the result was not uploaded (or its upload has not finished)",
                        )
                        .into());
                    }
                    Some(found) if found.size != result.byte_size => {
                        return Err(AppError::bad_input(format!(
                            "the result holds {} bytes but {} were declared",
                            found.size, result.byte_size
                        ))
                        .into());
                    }
                    Some(found) if !kinds::looks_like(&result.content_type, &found.head) => {
                        return Err(AppError::bad_input(format!(
                            "the result is not {}",
                            result.content_type
                        ))
                        .into());
                    }
                    Some(_) => {}
                }
                (None, Some(result.object_key))
            }
        };
        let outcome = Outcome::Completed {
            download_url: download_url.as_deref(),
            result_key: result_key.as_deref(),
        };
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
