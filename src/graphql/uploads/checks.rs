//! What a job's photos must pass before it is charged: each upload the viewer's and free, and
//! a checked copy of its object of the declared size and type.

use async_graphql::{Context, ID};
use futures_util::{StreamExt, stream};

use super::store;
use crate::db::uploads::{self, Upload};
use crate::error::{AppError, AppResult};
use crate::graphql::context::conn;
use crate::graphql::ids::{Kind, row_id};
use crate::storage::kinds;
use crate::storage::{StorageError, Store};

/// How many objects are checked at once.
const CONCURRENT_PROBES: usize = 8;

/// The photos a job will have: the upload rows, in order, and for each one just checked the
/// copy of its object the job uses instead.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The uploads' row ids, in the order given.
    pub ids: Vec<i64>,
    /// For each, the key of its checked copy (`None`: attached already, an idempotent retry).
    pub keys: Vec<Option<String>>,
}

impl Checked {
    /// The copies made.
    pub(crate) fn copies(&self) -> Vec<String> {
        self.keys.iter().flatten().cloned().collect()
    }
}

/// Checks that `user_id`'s uploads `ids` (as given in `uploadIds`) can become a job's photos:
/// each is the viewer's (NOT_FOUND otherwise, like any id that is not theirs), not yet part of
/// a job, and its object exists with the declared size and starts like the declared type
/// (BAD_USER_INPUT otherwise). Uploads already attached pass when `retry` (an idempotent
/// retry: the job's own checks decide). `before_copying` runs once the ids are known to be
/// the viewer's and free, before anything costly: the job's own checks of plan, quota and
/// credits, so that a job refused for them copies nothing.
///
/// What is checked is a copy the store makes of each object, under a key no upload URL names
/// ([`Store::checked_key`]): the job and its worker use that copy, so the bytes they read are
/// the bytes checked, whatever the owner sends to the upload URL afterwards. Each upload holds
/// at most one such copy ([`uploads::assign_copies`]), recorded before it is made: a job that
/// fails, or whose client goes away, leaves no more than that, deleted with the upload.
pub(crate) async fn verify_photos(
    ctx: &Context<'_>,
    user_id: &str,
    ids: &[ID],
    retry: bool,
    before_copying: impl Future<Output = AppResult<()>>,
) -> AppResult<Checked> {
    let store = store(ctx)?;
    let field = |i: usize| format!("uploadIds[{i}]");
    let mut rows = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let row = row_id(id, Kind::PhotoUpload).ok_or(AppError::NotFoundAt {
            what: "photo upload",
            field: field(i).into(),
        })?;
        if rows.contains(&row) {
            return Err(AppError::invalid_field(
                field(i),
                "this upload is listed twice",
            ));
        }
        rows.push(row);
    }
    let found = {
        let mut conn = conn(ctx).await?;
        uploads::owned_photos(&mut conn, user_id, &rows).await?
    };
    let mut pending = Vec::new();
    let mut keys = vec![None; rows.len()];
    for (i, row) in rows.iter().enumerate() {
        let upload = found
            .iter()
            .find(|u| u.id == *row)
            .ok_or(AppError::NotFoundAt {
                what: "photo upload",
                field: field(i).into(),
            })?;
        match upload.photo_job_id {
            Some(_) if retry => {}
            Some(_) => {
                return Err(AppError::invalid_field(
                    field(i),
                    "this upload already belongs to a job; upload the photo again",
                ));
            }
            None => {
                keys[i] = Some(store.checked_key(user_id));
                pending.push((i, upload.clone()));
            }
        }
    }
    before_copying.await?;
    let checked = Checked { ids: rows, keys };
    let copies = checked.copies();
    if copies.is_empty() {
        return Ok(checked);
    }
    let copied: Vec<i64> = pending.iter().map(|(_, upload)| upload.id).collect();
    let assigned =
        uploads::assign_copies(&mut *conn(ctx).await?, user_id, &copied, &copies).await?;
    if assigned != copies.len() {
        release(ctx, &copies).await;
        return Err(AppError::Conflict(
            "an upload was attached to another job meanwhile; upload the photo again".into(),
        ));
    }
    let problem = check_copies(store, pending, &checked.keys).await;
    match problem {
        Ok(None) => Ok(checked),
        Ok(Some((i, message))) => {
            release(ctx, &copies).await;
            Err(AppError::invalid_field(field(i), message))
        }
        Err(error) => {
            release(ctx, &copies).await;
            Err(error.into())
        }
    }
}

/// Copies each of `pending`'s objects to its key in `keys` and checks the copy; the first
/// problem by position.
async fn check_copies(
    store: &Store,
    pending: Vec<(usize, Upload)>,
    keys: &[Option<String>],
) -> Result<Option<(usize, String)>, StorageError> {
    let checks = stream::iter(pending)
        .map(|(i, upload)| {
            let copy = keys[i].clone().unwrap_or_default();
            async move {
                let probe = match store.copy(&upload.object_key, &copy).await {
                    Ok(true) => store.probe(&copy).await,
                    Ok(false) => Ok(None),
                    Err(error) => Err(error),
                };
                (i, probe, upload)
            }
        })
        .buffer_unordered(CONCURRENT_PROBES)
        .collect::<Vec<_>>()
        .await;
    let mut problems = Vec::new();
    for (i, probe, upload) in checks {
        let problem = match probe? {
            None => Some(format!(
                "{:?} was never uploaded (or its upload has not finished): PUT it to its url first",
                upload.file_name
            )),
            Some(found) if found.size != upload.byte_size => Some(format!(
                "{:?} holds {} bytes but {} were declared; upload it again",
                upload.file_name, found.size, upload.byte_size
            )),
            Some(found) if !kinds::looks_like(&upload.content_type, &found.head) => Some(format!(
                "{:?} is not a {} image; upload it again with its real type",
                upload.file_name, upload.content_type
            )),
            Some(_) => None,
        };
        if let Some(message) = problem {
            problems.push((i, message));
        }
    }
    Ok(problems.into_iter().min_by_key(|(i, _)| *i))
}

/// The checked copies `copies` will not be used: the sweeper deletes them now.
pub(crate) async fn release(ctx: &Context<'_>, copies: &[String]) {
    let released = match conn(ctx).await {
        Ok(mut conn) => uploads::release_copies(&mut conn, copies)
            .await
            .map_err(AppError::from),
        Err(error) => Err(error),
    };
    if let Err(error) = released {
        // Still recorded on their uploads: deleted with them, or replaced by the next attempt.
        tracing::warn!(%error, "could not hand unused photo copies to the sweeper");
    }
}
