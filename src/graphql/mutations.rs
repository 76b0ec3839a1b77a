//! The viewer's mutations. Each is one transaction: it either changes everything it should or
//! nothing, and answers a failure with a code of docs/api.md and a message a person can act on.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use diesel_async::AsyncConnection;

use super::context::{conn, jobs, photos, viewer_id, viewer_in_person};
use super::credits::CreditAccount;
use super::ids::{Kind, row_id};
use super::photo_jobs::{MAX_GROUP_NAME, PhotoJob};
use super::uploads::checks::{Checked, release, verify_photos};
use crate::db::photo_jobs::PhotoJob as Row;
use crate::db::photo_jobs::money::{self, JobOrder};
use crate::error::AppError;

/// Longest prompt, in characters (after trimming).
pub(crate) const MAX_PROMPT: usize = 2000;
/// Most photos in one job, whatever the plan.
pub(crate) const MAX_PHOTOS_PER_JOB: i32 = 100;
/// Longest idempotency key.
pub(crate) const MAX_IDEMPOTENCY_KEY: usize = 255;

/// What to process.
#[derive(InputObject)]
pub(crate) struct CreatePhotoJobInput {
    /// What to do with the photos: 1 to 2,000 characters (surrounding spaces are trimmed).
    pub prompt: String,
    /// The photos to process: ids of the viewer's uploads (`createPhotoUploads`), each
    /// uploaded, in the order given; required when the server stores photos. Each becomes
    /// this job's and no other's.
    pub upload_ids: Option<Vec<ID>>,
    /// How many photos: 1 to the plan's maximum per job (at most 100). With `uploadIds` it
    /// follows from them (and must agree when given); without storage it is required.
    pub photo_count: Option<i32>,
    /// A label to organise jobs by, at most 140 characters; empty means none.
    pub group_name: Option<String>,
    /// Makes retries safe: the same key returns the first job without charging again; the
    /// same key with a different input is a CONFLICT. At most 255 characters.
    pub idempotency_key: Option<String>,
}

/// The created job and the viewer's account after paying for it.
#[derive(SimpleObject)]
pub(crate) struct CreatePhotoJobPayload {
    /// The new job (PENDING), or the first one created with the same idempotency key.
    pub photo_job: PhotoJob,
    /// The viewer's credits after the charge.
    pub credits: CreditAccount,
}

struct Validated {
    prompt: String,
    upload_ids: Option<Vec<ID>>,
    photo_count: i32,
    group_name: Option<String>,
    idempotency_key: Option<String>,
}

fn validate(input: CreatePhotoJobInput) -> Result<Validated, AppError> {
    let prompt = input.prompt.trim().to_owned();
    if prompt.is_empty() {
        return Err(AppError::invalid_field(
            "prompt",
            "prompt must not be empty",
        ));
    }
    if prompt.chars().count() > MAX_PROMPT {
        return Err(AppError::invalid_field(
            "prompt",
            format!("prompt is at most {MAX_PROMPT} characters"),
        ));
    }
    let photo_count = match (&input.upload_ids, input.photo_count) {
        (Some(ids), _) if ids.is_empty() || ids.len() > MAX_PHOTOS_PER_JOB as usize => {
            return Err(AppError::invalid_field(
                "uploadIds",
                format!("uploadIds must list 1 to {MAX_PHOTOS_PER_JOB} uploads"),
            ));
        }
        (Some(ids), Some(count)) if count as usize != ids.len() => {
            return Err(AppError::invalid_field(
                "photoCount",
                format!(
                    "photoCount ({count}) must equal the number of uploadIds ({}), or be left out",
                    ids.len()
                ),
            ));
        }
        (Some(ids), _) => ids.len() as i32,
        (None, None) => {
            return Err(AppError::invalid_field(
                "uploadIds",
                "a job needs its photos: upload them with createPhotoUploads and pass uploadIds",
            ));
        }
        (None, Some(count)) => count,
    };
    if !(1..=MAX_PHOTOS_PER_JOB).contains(&photo_count) {
        return Err(AppError::invalid_field(
            "photoCount",
            format!("photoCount must be between 1 and {MAX_PHOTOS_PER_JOB}, got {photo_count}"),
        ));
    }
    let group_name = input
        .group_name
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty());
    if group_name
        .as_ref()
        .is_some_and(|g| g.chars().count() > MAX_GROUP_NAME)
    {
        return Err(AppError::invalid_field(
            "groupName",
            format!("groupName is at most {MAX_GROUP_NAME} characters"),
        ));
    }
    if let Some(key) = &input.idempotency_key
        && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY)
    {
        return Err(AppError::invalid_field(
            "idempotencyKey",
            format!("idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY} characters"),
        ));
    }
    Ok(Validated {
        prompt,
        upload_ids: input.upload_ids,
        photo_count,
        group_name,
        idempotency_key: input.idempotency_key,
    })
}

/// A change to one of the viewer's jobs.
#[derive(InputObject)]
pub(crate) struct UpdatePhotoJobInput {
    /// The job's global id.
    pub id: ID,
    /// The new group, at most 140 characters; null or empty clears it.
    pub group_name: Option<String>,
}

/// With photos named by `uploadIds`, the plan's limit on photos per job is about that field.
fn photos_field(error: AppError) -> AppError {
    match error {
        AppError::InvalidField { field, message } if field == "photoCount" => {
            AppError::invalid_field("uploadIds", message)
        }
        error => error,
    }
}

/// The row id of one of the viewer's jobs from its global id; malformed ids are NOT_FOUND
/// like any other id the viewer does not own.
fn job_row_id(id: &ID) -> Result<i64, AppError> {
    row_id(id, Kind::PhotoJob).ok_or(AppError::NotFound("photo job"))
}

/// The viewer's photo-job mutations.
#[derive(Default)]
pub(crate) struct PhotoJobMutation;

/// Changes to the viewer's own data.
#[Object]
impl PhotoJobMutation {
    /// Creates a photo job from the viewer's uploads: checks each object in storage (it exists
    /// with the declared size and starts like the declared type), prices the job (free
    /// allowance first, then the plan's price per photo), checks the usage quota, charges the
    /// credits, records the ledger row and the usage, attaches the uploads and queues the job
    /// as PENDING — all in one transaction. Fails with NOT_FOUND (an upload id that is not the
    /// viewer's, named in `extensions.field`), BAD_USER_INPUT, QUOTA_EXCEEDED,
    /// INSUFFICIENT_CREDITS, CONFLICT (idempotency key reused) or SERVICE_UNAVAILABLE (storage
    /// unreachable), changing nothing.
    async fn create_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job to create.")] input: CreatePhotoJobInput,
    ) -> async_graphql::Result<CreatePhotoJobPayload> {
        let user_id = viewer_in_person(ctx, "spend credits on a photo job")
            .await?
            .id;
        let input = validate(input)?;
        let allowance = jobs(ctx)?.free_photo_allowance;
        // With storage a job is made of uploaded photos, checked in storage before anything
        // is charged; without, of a bare photoCount.
        let order = JobOrder {
            prompt: &input.prompt,
            photo_count: input.photo_count,
            group_name: input.group_name.as_deref(),
            idempotency_key: input.idempotency_key.as_deref(),
            upload_ids: None,
            checked_keys: &[],
        };
        let checked: Option<Checked> = match (&input.upload_ids, photos(ctx)?.store().is_some()) {
            (Some(ids), _) => {
                // Refused for the plan, the quota or the credits before any photo is copied.
                let precheck = async {
                    let mut conn = conn(ctx).await?;
                    money::precheck(&mut conn, &user_id, &order, allowance)
                        .await
                        .map_err(|error| photos_field(AppError::from(error)))
                };
                let retry = input.idempotency_key.is_some();
                Some(verify_photos(ctx, &user_id, ids, retry, precheck).await?)
            }
            (None, true) => {
                return Err(AppError::invalid_field(
                    "uploadIds",
                    "a job needs its photos: upload them with createPhotoUploads and pass uploadIds",
                )
                .into());
            }
            (None, false) => None,
        };
        let mut conn = conn(ctx).await?;
        let created = conn
            .transaction(async |conn| {
                let order = JobOrder {
                    upload_ids: checked.as_ref().map(|c| c.ids.as_slice()),
                    checked_keys: checked.as_ref().map_or(&[], |c| c.keys.as_slice()),
                    ..order
                };
                money::create(conn, &user_id, &order, allowance).await
            })
            .await;
        drop(conn);
        let (job, account) = match created {
            Ok(created) => created,
            Err(error) => {
                if let Some(checked) = &checked {
                    release(ctx, &checked.copies()).await;
                }
                let error = AppError::from(error);
                return Err(match checked {
                    Some(_) => photos_field(error),
                    None => error,
                }
                .into());
            }
        };
        Ok(CreatePhotoJobPayload {
            photo_job: job.into(),
            credits: CreditAccount {
                row: account,
                free_photo_allowance: allowance,
            },
        })
    }

    /// Sets or clears a job's group. NOT_FOUND for ids that are not the viewer's.
    async fn update_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job and its new group.")] input: UpdatePhotoJobInput,
    ) -> async_graphql::Result<PhotoJob> {
        let user_id = viewer_id(ctx).await?;
        let id = job_row_id(&input.id)?;
        let group = input
            .group_name
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty());
        if group
            .as_ref()
            .is_some_and(|g| g.chars().count() > MAX_GROUP_NAME)
        {
            return Err(AppError::invalid_field(
                "groupName",
                format!("groupName is at most {MAX_GROUP_NAME} characters"),
            )
            .into());
        }
        let mut conn = conn(ctx).await?;
        let job = Row::set_group(&mut conn, &user_id, id, group.as_deref())
            .await
            .map_err(AppError::from)?
            .ok_or(AppError::NotFound("photo job"))?;
        Ok(job.into())
    }

    /// Cancels a PENDING job and refunds it exactly once (credits, free photos and usage).
    /// CONFLICT for jobs in any other state; NOT_FOUND for ids that are not the viewer's.
    async fn cancel_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's global id.")] id: ID,
    ) -> async_graphql::Result<PhotoJob> {
        let user_id = viewer_id(ctx).await?;
        let id = job_row_id(&id)?;
        let mut conn = conn(ctx).await?;
        let job = conn
            .transaction(async |conn| money::cancel(conn, &user_id, id).await)
            .await
            .map_err(AppError::from)?;
        Ok(job.into())
    }

    /// Deletes a job; a PENDING one is canceled and refunded first. CONFLICT while it is
    /// PROCESSING; NOT_FOUND for ids that are not the viewer's. The ledger keeps its rows.
    /// Returns the deleted job's id.
    async fn delete_photo_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's global id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let user_id = viewer_id(ctx).await?;
        let row = job_row_id(&id)?;
        let mut conn = conn(ctx).await?;
        conn.transaction(async |conn| money::delete(conn, &user_id, row).await)
            .await
            .map_err(AppError::from)?;
        Ok(id)
    }
}
