//! Photos in and out. `createPhotoUploads` records the viewer's uploads and answers presigned
//! `PUT`s; a job names the uploads it processes, and bff checks each object itself (size and
//! first bytes) before it charges anything. `Photo.url` and `PhotoJob.downloadUrl` are
//! presigned `GET`s minted per request for whoever may see the job.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;

pub(crate) mod checks;

use super::context::{conn, photos, read, viewer_id};
use super::ids::{Kind, global_id};
use crate::db::credits::CreditAccount;
use crate::db::subscriptions::BillingState;
use crate::db::uploads::{self, NewUpload, Upload, UploadPurpose};
use crate::error::{AppError, AppResult};
use crate::storage::kinds::{self, PHOTO_TYPES};
use crate::storage::{Presigned, StorageError, Store};

/// Longest file name, in characters.
pub const MAX_FILE_NAME: usize = 255;
/// Most photos one job (and so one `createPhotoUploads`) may have, whatever the plan.
pub const MAX_FILES: usize = 100;

impl From<StorageError> for AppError {
    fn from(error: StorageError) -> Self {
        AppError::Unavailable(error.to_string())
    }
}

/// The store, or the error that says uploads are off on this server.
pub fn store<'a>(ctx: &Context<'a>) -> AppResult<&'a Arc<Store>> {
    photos(ctx)?.store().ok_or_else(|| {
        AppError::Disabled(
            "photo storage is not configured on this server (BFF_STORAGE_URL is unset)".into(),
        )
    })
}

/// A header a presigned request must send.
#[derive(SimpleObject, Clone, Debug)]
pub struct HttpHeader {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// An upload: where to `PUT` the file, with which headers, until when.
pub struct PhotoUpload {
    row: Upload,
    signed: Presigned,
}

impl PhotoUpload {
    /// The upload of `row`, with a fresh presigned `PUT`.
    pub fn new(store: &Store, row: Upload) -> Self {
        let signed = store.presign_put(&row.object_key, &row.content_type, row.byte_size);
        PhotoUpload { row, signed }
    }
}

/// A file to upload: `PUT` its bytes to `url` with `headers`, before `expiresAt`.
#[Object]
impl PhotoUpload {
    /// The upload's id: pass it to `createPhotoJob(input: { uploadIds })`.
    async fn id(&self) -> ID {
        global_id(Kind::PhotoUpload, self.row.id)
    }
    /// The file name given.
    async fn file_name(&self) -> &str {
        &self.row.file_name
    }
    /// The content type the upload must send.
    async fn content_type(&self) -> &str {
        &self.row.content_type
    }
    /// The size in bytes the upload must have.
    async fn byte_size(&self) -> i64 {
        self.row.byte_size
    }
    /// A presigned `PUT` URL: send exactly the file, with `headers`. Another type, another
    /// size, another method or an expired URL is refused by the store.
    async fn url(&self) -> &str {
        &self.signed.url
    }
    /// The headers the `PUT` must send (browsers set `Content-Length` themselves).
    async fn headers(&self) -> Vec<HttpHeader> {
        self.signed
            .headers
            .iter()
            .map(|(name, value)| HttpHeader {
                name: (*name).to_owned(),
                value: value.clone(),
            })
            .collect()
    }
    /// When `url` stops working.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.signed.expires_at
    }
}

/// One of a job's photos.
pub struct Photo(pub Upload);

/// One of a job's photos.
#[Object]
impl Photo {
    /// The upload's id.
    async fn id(&self) -> ID {
        global_id(Kind::PhotoUpload, self.0.id)
    }
    /// The file name given at upload.
    async fn file_name(&self) -> &str {
        &self.0.file_name
    }
    /// Its content type.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }
    /// Its size in bytes.
    async fn byte_size(&self) -> i64 {
        self.0.byte_size
    }
    /// A presigned `GET` of the photo, minted for this response and valid for minutes
    /// (`BFF_PRESIGNED_URL_SECONDS`): fetch it again for a fresh one.
    async fn url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let signed = store(ctx)?.presign_get(&self.0.object_key, None);
        super::context::url_minted(ctx, signed.expires_at);
        Ok(signed.url)
    }
}

/// The photos of `job_id` (owned by `owner`), in order; none without storage.
pub async fn photos_of_job(ctx: &Context<'_>, owner: &str, job_id: i64) -> AppResult<Vec<Photo>> {
    if photos(ctx)?.store().is_none() {
        return Ok(Vec::new());
    }
    let conn = read(ctx).await?;
    Ok(uploads::photos_of_job(&mut &**conn, owner, job_id)
        .await?
        .into_iter()
        .map(Photo)
        .collect())
}

/// A presigned `GET` of a completed job's result, saved as `photo-job-{id}.{ext}`.
pub fn result_url(ctx: &Context<'_>, job_id: i64, key: &str) -> AppResult<Option<String>> {
    let Some(store) = photos(ctx)?.store() else {
        return Ok(None);
    };
    let extension = key.rsplit_once('.').map_or("bin", |(_, ext)| ext);
    let name = format!("photo-job-{job_id}.{extension}");
    let signed = store.presign_get(key, Some(&name));
    super::context::url_minted(ctx, signed.expires_at);
    Ok(Some(signed.url))
}

/// A file the viewer is about to upload.
#[derive(InputObject)]
pub struct PhotoFileInput {
    /// Its name, 1 to 255 characters (a path is cut to its last part).
    pub file_name: String,
    /// `image/jpeg`, `image/png`, `image/webp` or `image/heic` (`image/heif`).
    pub content_type: String,
    /// Its size in bytes: 1 to `BFF_UPLOAD_MAX_BYTES` (25 MiB by default).
    pub byte_size: i64,
}

/// The files to upload.
#[derive(InputObject)]
pub struct CreatePhotoUploadsInput {
    /// 1 to the plan's photos per job.
    pub files: Vec<PhotoFileInput>,
}

/// Where to upload each file, in the order given.
#[derive(SimpleObject)]
pub struct CreatePhotoUploadsPayload {
    /// One upload per file.
    pub uploads: Vec<PhotoUpload>,
}

/// A file that passed [`validate_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its name as stored (see [`clean_file_name`]).
    pub file_name: String,
    /// Its canonical content type, one of [`PHOTO_TYPES`].
    pub content_type: &'static str,
    /// Its size in bytes.
    pub byte_size: i64,
}

/// A file name as stored: its last path segment, trimmed, without control characters.
pub fn clean_file_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let ok = !last.is_empty()
        && last.chars().count() <= MAX_FILE_NAME
        && !last.chars().any(char::is_control)
        && last != "."
        && last != "..";
    ok.then(|| last.to_owned())
}

/// Checks every file of `input` (at most `max_bytes` each), naming the first field that is
/// wrong.
pub fn validate_files(input: CreatePhotoUploadsInput, max_bytes: i64) -> AppResult<Vec<File>> {
    if input.files.is_empty() || input.files.len() > MAX_FILES {
        return Err(AppError::invalid_field(
            "files",
            format!("files must list 1 to {MAX_FILES} files"),
        ));
    }
    input
        .files
        .into_iter()
        .enumerate()
        .map(|(i, file)| {
            let file_name = clean_file_name(&file.file_name).ok_or_else(|| {
                AppError::invalid_field(
                    format!("files[{i}].fileName"),
                    format!("fileName must be 1 to {MAX_FILE_NAME} characters without control characters"),
                )
            })?;
            let content_type =
                kinds::accepted(&file.content_type, PHOTO_TYPES).ok_or_else(|| {
                    AppError::invalid_field(
                        format!("files[{i}].contentType"),
                        format!(
                            "{:?} is not accepted: JPEG, PNG, WebP or HEIC ({})",
                            file.content_type.chars().take(100).collect::<String>(),
                            PHOTO_TYPES.join(", ")
                        ),
                    )
                })?;
            if !(1..=max_bytes).contains(&file.byte_size) {
                return Err(AppError::invalid_field(
                    format!("files[{i}].byteSize"),
                    format!(
                        "byteSize must be between 1 and {max_bytes} bytes, got {}",
                        file.byte_size
                    ),
                ));
            }
            Ok(File {
                file_name,
                content_type,
                byte_size: file.byte_size,
            })
        })
        .collect()
}

/// The viewer's uploads.
#[derive(Default)]
pub struct UploadMutation;

/// The viewer's uploads.
#[Object]
impl UploadMutation {
    /// Records uploads for the viewer's files and answers, for each, a presigned `PUT` to send
    /// the file straight to storage (valid for `BFF_PRESIGNED_URL_SECONDS`). Pass their ids to
    /// `createPhotoJob`; uploads no job names are deleted after `BFF_UPLOAD_UNATTACHED_HOURS`.
    /// BAD_USER_INPUT (naming the field, e.g. `files[1].contentType`) for a type other than
    /// JPEG, PNG, WebP or HEIC, a size over the limit or more files than the plan allows per
    /// job; QUOTA_EXCEEDED when the files do not fit in the plan's storage (uploads waiting
    /// for a job count with their declared size) or would leave more uploads waiting for a job
    /// than one person may have (`BFF_UPLOAD_MAX_PENDING`). Nothing is created then.
    async fn create_photo_uploads(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The files to upload.")] input: CreatePhotoUploadsInput,
    ) -> async_graphql::Result<CreatePhotoUploadsPayload> {
        let user_id = viewer_id(ctx).await?;
        let store = store(ctx)?;
        let settings = &photos(ctx)?.settings;
        let files = validate_files(input, settings.upload_max_bytes)?;
        let expires_at = Utc::now()
            + chrono::Duration::from_std(settings.url_lifetime).unwrap_or_default()
            + chrono::Duration::seconds(1);
        let mut conn = conn(ctx).await?;
        let rows = conn
            .transaction(async |conn| {
                // The account lock makes concurrent uploads of one viewer take turns, so the
                // storage limit holds.
                CreditAccount::lock(conn, &user_id).await?;
                let plan = BillingState::load(conn, &user_id).await?.effective_plan;
                if files.len() > plan.max_photos_per_job as usize {
                    return Err(AppError::invalid_field(
                        "files",
                        format!(
                            "the {} plan allows at most {} photos per job",
                            plan.name, plan.max_photos_per_job
                        ),
                    ));
                }
                let pending = uploads::pending_count(conn, &user_id).await?;
                if pending + files.len() as i64 > settings.max_pending {
                    return Err(AppError::QuotaExceeded(format!(
                        "{pending} uploads are waiting for a job, and one person may have at most \
                         {} waiting (BFF_UPLOAD_MAX_PENDING): create a job with them first (uploads \
                         no job uses are deleted {} hours after upload)",
                        settings.max_pending,
                        settings.unattached_lifetime.as_secs() / 3600
                    )));
                }
                if let Some(limit) = plan.storage_bytes_limit {
                    let used = uploads::storage_used(conn, &user_id).await?;
                    let adding: i64 = files.iter().map(|f| f.byte_size).sum();
                    if used + adding > limit {
                        return Err(AppError::QuotaExceeded(format!(
                            "these files need {adding} bytes but only {} of the {} plan's \
                             {limit} bytes of storage remain; delete jobs or upgrade the plan",
                            (limit - used).max(0),
                            plan.name
                        )));
                    }
                }
                let new: Vec<NewUpload> = files
                    .iter()
                    .map(|file| NewUpload {
                        user_id: &user_id,
                        purpose: UploadPurpose::Photo,
                        photo_job_id: None,
                        object_key: store.upload_key(&user_id),
                        file_name: &file.file_name,
                        content_type: file.content_type,
                        byte_size: file.byte_size,
                        url_expires_at: expires_at,
                    })
                    .collect();
                Ok(uploads::insert_all(conn, &new).await?)
            })
            .await?;
        Ok(CreatePhotoUploadsPayload {
            uploads: rows
                .into_iter()
                .map(|row| PhotoUpload::new(store, row))
                .collect(),
        })
    }
}
