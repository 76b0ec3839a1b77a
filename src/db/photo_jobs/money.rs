//! The money path of a photo job, in one place beside its pricing rules: creating one (the
//! plan's limits and quota, the free allowance first, then the plan's price per photo, charged
//! to the credit account with a ledger row and counted as usage), canceling or deleting it,
//! failing it (the worker) and refunding it (credits, free photos and usage, exactly once).
//! Each runs inside the caller's transaction and takes the owner's credit-account lock itself,
//! so concurrent requests of one user take turns. Failures are [`MoneyError`]s: what went
//! wrong, in numbers; the GraphQL layer words them.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection};

use super::worker::{self, Outcome};
use super::{NewPhotoJob, PhotoJob, PhotoJobStatus};
use crate::db::credits::{Change, CreditAccount, CreditTransactionKind};
use crate::db::subscriptions::BillingState;
use crate::db::{uploads, usage};

/// What a money operation on a job refused, or the database error it met.
#[derive(Debug, thiserror::Error)]
pub enum MoneyError {
    /// More photos than the plan allows in one job.
    #[error("the {plan} plan allows at most {max} photos per job")]
    TooManyPhotos {
        /// The plan's name.
        plan: String,
        /// Its photos per job.
        max: i32,
    },
    /// The job does not fit in what is left of the plan's quota for the window.
    #[error("quota exceeded: {needed} photos needed, {remaining} of {quota} left")]
    QuotaExceeded {
        /// Photos the job needs.
        needed: i32,
        /// Photos left in the window.
        remaining: i32,
        /// The plan's quota.
        quota: i32,
        /// The plan's name.
        plan: String,
        /// When the window ends.
        until: DateTime<Utc>,
    },
    /// The balance does not cover the job.
    #[error("insufficient credits: {cost_cents} needed, {balance_cents} held")]
    InsufficientCredits {
        /// What the job costs, in cents.
        cost_cents: i64,
        /// The balance, in cents.
        balance_cents: i64,
    },
    /// One of the job's uploads was attached to another job (or deleted) meanwhile.
    #[error("an upload is no longer available")]
    UploadTaken,
    /// The idempotency key was used for a different job.
    #[error("the idempotency key was used for a different job")]
    IdempotencyKeyReused,
    /// No such job (among the viewer's, for viewer operations).
    #[error("no such photo job")]
    NotFound,
    /// The job's state does not allow the operation.
    #[error("a {status} job cannot be {operation:?}")]
    WrongState {
        /// What was attempted.
        operation: Operation,
        /// The job's state.
        status: PhotoJobStatus,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// An operation on an existing job, for [`MoneyError::WrongState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Canceled (PENDING only).
    Cancel,
    /// Deleted (not while PROCESSING).
    Delete,
    /// Finished by the worker: heartbeat, complete, fail (PROCESSING only).
    Finish,
}

/// What money operations return.
pub(crate) type MoneyResult<T> = Result<T, MoneyError>;

/// A job to create, already validated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobOrder<'a> {
    /// What to do with the photos.
    pub prompt: &'a str,
    /// How many photos.
    pub photo_count: i32,
    /// Its group, if any.
    pub group_name: Option<&'a str>,
    /// The client's idempotency key, if any.
    pub idempotency_key: Option<&'a str>,
    /// The viewer's uploads the job processes, in order (with storage; `photo_count` is
    /// their number).
    pub upload_ids: Option<&'a [i64]>,
    /// For each of `upload_ids`, the checked copy of its object the job uses instead (see
    /// [`uploads::attach`]); empty without storage.
    pub checked_keys: &'a [Option<String>],
}

/// What a job of `photo_count` photos costs `user_id` now, or why they may not have it: the
/// plan's photos per job, the usage quota, the credits (a paid job needs a balance that covers
/// it; a free one, within the allowance, does not, even below zero).
async fn price(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    account: &CreditAccount,
    photo_count: i32,
    free_allowance: i32,
) -> MoneyResult<Priced> {
    let billing = BillingState::load(conn, user_id).await?;
    let plan = &billing.effective_plan;
    if photo_count > plan.max_photos_per_job {
        return Err(MoneyError::TooManyPhotos {
            plan: plan.name.clone(),
            max: plan.max_photos_per_job,
        });
    }
    let (window, used) = usage::current(conn, user_id, usage::PHOTOS).await?;
    if let Some(quota) = plan.monthly_photo_quota
        && used + photo_count > quota
    {
        return Err(MoneyError::QuotaExceeded {
            needed: photo_count,
            remaining: (quota - used).max(0),
            quota,
            plan: plan.name.clone(),
            until: window.end,
        });
    }
    let free = (free_allowance - account.free_photos_used).clamp(0, photo_count);
    let cost_cents = i64::from(photo_count - free) * plan.price_per_photo_cents;
    if cost_cents > 0 && cost_cents > account.balance_cents {
        return Err(MoneyError::InsufficientCredits {
            cost_cents,
            balance_cents: account.balance_cents,
        });
    }
    Ok(Priced {
        window,
        free,
        cost_cents,
    })
}

/// A job's price, from [`price`].
struct Priced {
    window: usage::Window,
    free: i32,
    cost_cents: i64,
}

/// Whether [`create`] would refuse `input` now for the plan, the quota or the credits (an
/// idempotent retry of an existing job passes): checked before anything costly is done for a
/// job (its photos' copies). [`create`] checks again under the lock; this only spares the work.
pub(crate) async fn precheck(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    input: &JobOrder<'_>,
    free_allowance: i32,
) -> MoneyResult<()> {
    let account = CreditAccount::find_or_empty(conn, user_id).await?;
    if let Some(key) = &input.idempotency_key
        && PhotoJob::find_by_idempotency_key(conn, user_id, key)
            .await?
            .is_some()
    {
        return Ok(());
    }
    price(conn, user_id, &account, input.photo_count, free_allowance)
        .await
        .map(drop)
}

/// Creates, prices and pays for a job, all under the viewer's account lock.
pub(crate) async fn create(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    input: &JobOrder<'_>,
    free_allowance: i32,
) -> MoneyResult<(PhotoJob, CreditAccount)> {
    let account = CreditAccount::lock(conn, user_id).await?;

    if let Some(key) = &input.idempotency_key
        && let Some(job) = PhotoJob::find_by_idempotency_key(conn, user_id, key).await?
    {
        let same_uploads = match input.upload_ids {
            Some(ids) => {
                let attached = uploads::photos_of_job(conn, user_id, job.id).await?;
                attached.iter().map(|u| u.id).eq(ids.iter().copied())
            }
            None => true,
        };
        let same = job.prompt == input.prompt
            && job.photo_count == input.photo_count
            && job.group_name.as_deref() == input.group_name
            && same_uploads;
        if !same {
            return Err(MoneyError::IdempotencyKeyReused);
        }
        return Ok((job, account));
    }

    let Priced {
        window,
        free,
        cost_cents,
    } = price(conn, user_id, &account, input.photo_count, free_allowance).await?;

    let job = NewPhotoJob {
        user_id,
        prompt: input.prompt,
        photo_count: input.photo_count,
        cost_cents,
        free_photos_applied: free,
        group_name: input.group_name,
        idempotency_key: input.idempotency_key,
    }
    .insert(conn)
    .await?;
    if let Some(ids) = input.upload_ids
        && uploads::attach(conn, user_id, job.id, ids, input.checked_keys).await? != ids.len()
    {
        return Err(MoneyError::UploadTaken);
    }
    if cost_cents > 0 {
        let description = format!("Photo job: {} photos", input.photo_count);
        let change = Change {
            user_id,
            kind: CreditTransactionKind::JobCharge,
            amount_cents: -cost_cents,
            description: &description,
            photo_job_id: Some(job.id),
            purchase_id: None,
        };
        // The lock makes this succeed; the conditional update is a second line of defence.
        if CreditAccount::apply(conn, &change).await?.is_none() {
            return Err(MoneyError::InsufficientCredits {
                cost_cents,
                balance_cents: account.balance_cents,
            });
        }
    }
    if free > 0 {
        CreditAccount::add_free_photos_used(conn, user_id, free).await?;
    }
    usage::add(conn, user_id, usage::PHOTOS, window, input.photo_count).await?;
    let account = CreditAccount::find_or_empty(conn, user_id).await?;
    Ok((job, account))
}

/// The error for a job that exists but is in the wrong state for `operation`, or NOT_FOUND if
/// it is not the viewer's.
async fn wrong_state(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    id: i64,
    operation: Operation,
) -> MoneyError {
    match PhotoJob::find(conn, user_id, id).await {
        Ok(Some(job)) => MoneyError::WrongState {
            operation,
            status: job.status,
        },
        Ok(None) => MoneyError::NotFound,
        Err(e) => e.into(),
    }
}

/// Cancels the viewer's PENDING job and refunds it, under the account lock.
pub(crate) async fn cancel(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    id: i64,
) -> MoneyResult<PhotoJob> {
    CreditAccount::lock(conn, user_id).await?;
    let Some(job) = PhotoJob::transition(
        conn,
        user_id,
        id,
        PhotoJobStatus::Pending,
        PhotoJobStatus::Canceled,
    )
    .await?
    else {
        return Err(wrong_state(conn, user_id, id, Operation::Cancel).await);
    };
    refund(conn, &job, "Refund: photo job canceled").await?;
    Ok(job)
}

/// Deletes the viewer's job, canceling and refunding it first when it is PENDING, under the
/// account lock; a PROCESSING job stays. The ledger keeps its rows.
pub(crate) async fn delete(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    id: i64,
) -> MoneyResult<()> {
    CreditAccount::lock(conn, user_id).await?;
    if PhotoJob::find(conn, user_id, id)
        .await?
        .is_some_and(|job| job.status == PhotoJobStatus::Pending)
    {
        cancel(conn, user_id, id).await?;
    }
    if PhotoJob::delete_unless_processing(conn, user_id, id).await? {
        Ok(())
    } else {
        Err(wrong_state(conn, user_id, id, Operation::Delete).await)
    }
}

/// Fails a PROCESSING job with `reason` (the worker's verdict) and refunds it; whoever owns
/// it (the worker acts for no viewer). NOT_FOUND for an unknown id, CONFLICT in another state.
pub(crate) async fn fail(
    conn: &mut AsyncPgConnection,
    id: i64,
    reason: &str,
) -> MoneyResult<PhotoJob> {
    let owner = worker::owner(conn, id).await?.ok_or(MoneyError::NotFound)?;
    CreditAccount::lock(conn, &owner).await?;
    let Some(job) = worker::finish(conn, id, Outcome::Failed { reason }).await? else {
        return Err(not_processing(conn, id).await);
    };
    refund(conn, &job, "Refund: photo job failed").await?;
    Ok(job)
}

/// Returns jobs whose worker vanished (lease expired) to PENDING, and fails and refunds those
/// on their last attempt, each in its own transaction under its owner's account lock. Any
/// number of processes may sweep at once: rows are skipped or re-checked under lock, and the
/// refund happens at most once. Returns (requeued, failed).
pub(crate) async fn sweep_expired_leases(
    conn: &mut AsyncPgConnection,
    max_attempts: i32,
) -> QueryResult<(usize, usize)> {
    let requeued = worker::requeue_expired(conn, max_attempts).await?.len();
    let mut failed = 0;
    let reason = format!("The photo worker stopped responding ({max_attempts} attempts)");
    for (id, owner) in worker::exhausted(conn, max_attempts).await? {
        let done = conn
            .transaction(async |conn| {
                CreditAccount::lock(conn, &owner).await?;
                let Some(job) = worker::fail_exhausted(conn, id, max_attempts, &reason).await?
                else {
                    return Ok::<_, diesel::result::Error>(false);
                };
                refund(conn, &job, "Refund: photo job failed").await?;
                Ok(true)
            })
            .await?;
        failed += usize::from(done);
    }
    Ok((requeued, failed))
}

/// The error for a worker operation on a job that is not PROCESSING (whoever owns it).
pub(crate) async fn not_processing(conn: &mut AsyncPgConnection, id: i64) -> MoneyError {
    match worker::status(conn, id).await {
        Ok(Some(status)) => MoneyError::WrongState {
            operation: Operation::Finish,
            status,
        },
        Ok(None) => MoneyError::NotFound,
        Err(e) => e.into(),
    }
}

/// Gives back what a job took — its credits (a `JOB_REFUND`; the unique ledger index on
/// `(photo_job_id, kind)` makes it happen at most once), its free photos and its usage.
/// The caller holds the owner's account lock and has just moved the job to CANCELED or
/// FAILED (or, for support's refund of a bad result, found it COMPLETED and not refunded), in
/// the same transaction.
pub(crate) async fn refund(
    conn: &mut AsyncPgConnection,
    job: &PhotoJob,
    description: &str,
) -> QueryResult<()> {
    if job.cost_cents > 0 {
        let change = Change {
            user_id: &job.user_id,
            kind: CreditTransactionKind::JobRefund,
            amount_cents: job.cost_cents,
            description,
            photo_job_id: Some(job.id),
            purchase_id: None,
        };
        CreditAccount::apply(conn, &change).await?;
    }
    if job.free_photos_applied > 0 {
        CreditAccount::add_free_photos_used(conn, &job.user_id, -job.free_photos_applied).await?;
    }
    usage::give_back(
        conn,
        &job.user_id,
        usage::PHOTOS,
        job.created_at,
        job.photo_count,
    )
    .await
}
