//! What changed for the viewer after a cursor: `viewer.changes(since:)`, and the
//! `viewerChanged(since:)` subscription that replays it and then follows. Both read the
//! viewer's change log ([`crate::db::changes`]) up to a version of the viewer read with their
//! billing, credits and usage in one statement, so an answer is one consistent state: every
//! change at or below its cursor is in it (or in an earlier answer), and none above.

use std::collections::HashMap;

use async_graphql::{ID, Object};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel_async::AsyncPgConnection;
use futures_util::Stream;

use super::billing::{BillingSubscription, UsageMeter};
use super::credits::CreditAccount;
use super::ids::{Kind, global_id};
use super::notifications::Notification;
use super::photo_jobs::PhotoJob;
use super::purchases::Purchase;
use crate::db::changes::{self, Entry};
use crate::db::notifications::Notification as NotificationRow;
use crate::db::photo_jobs::PhotoJob as JobRow;
use crate::db::pool::DbPool;
use crate::db::purchases::Purchase as PurchaseRow;
use crate::db::request::Db;
use crate::db::viewer::{SessionUser, ViewerState};
use crate::error::{AppError, AppResult};
use crate::live::hub::{Event, Subscriber};

/// The most things one answer holds; more follow with `hasMore`.
pub(crate) const PAGE: i64 = 200;

/// The cursor of a position in the viewer's changes (opaque to clients).
pub fn cursor(position: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("changes:{position}"))
}

/// The position a cursor names; `BAD_USER_INPUT` (field `since`) for anything bff did not give.
pub(crate) fn position(cursor: &str) -> AppResult<i64> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("changes:")?.parse::<i64>().ok())
        .filter(|position| *position >= 0)
        .ok_or_else(|| AppError::invalid_field("since", "not a cursor bff gave"))
}

/// What changed after a cursor, each thing once, as it is now, in the order it last changed.
pub(crate) struct ViewerChanges {
    cursor: i64,
    has_more: bool,
    jobs: Vec<JobRow>,
    deleted_jobs: Vec<i64>,
    purchases: Vec<PurchaseRow>,
    notifications: Vec<NotificationRow>,
    deleted_uploads: Vec<i64>,
    credits: Option<CreditAccount>,
    subscription: Option<BillingSubscription>,
    usage: Option<Vec<UsageMeter>>,
    preferences: bool,
}

impl ViewerChanges {
    /// Nothing, at `position`: where a client starts.
    pub(crate) fn none(position: i64) -> Self {
        ViewerChanges {
            cursor: position,
            has_more: false,
            jobs: Vec::new(),
            deleted_jobs: Vec::new(),
            purchases: Vec::new(),
            notifications: Vec::new(),
            deleted_uploads: Vec::new(),
            credits: None,
            subscription: None,
            usage: None,
            preferences: false,
        }
    }

    /// Whether nothing changed.
    fn is_empty(&self) -> bool {
        self.jobs.is_empty()
            && self.deleted_jobs.is_empty()
            && self.purchases.is_empty()
            && self.notifications.is_empty()
            && self.deleted_uploads.is_empty()
            && self.credits.is_none()
            && self.subscription.is_none()
            && self.usage.is_none()
            && !self.preferences
    }
}

/// What changed after a cursor: each thing once, as it is now, in the order it last changed.
#[Object]
impl ViewerChanges {
    /// Where this answer leaves off: pass it as `since` next time (at once when `hasMore`).
    async fn cursor(&self) -> String {
        cursor(self.cursor)
    }
    /// Whether more changes follow this answer (at most 200 things are in one).
    async fn has_more(&self) -> bool {
        self.has_more
    }
    /// Jobs created or changed, as they are now, in the order they last changed.
    async fn photo_jobs(&self) -> Vec<PhotoJob> {
        self.jobs.iter().cloned().map(PhotoJob::from).collect()
    }
    /// Jobs deleted (tombstones: their ids).
    async fn deleted_photo_job_ids(&self) -> Vec<ID> {
        let id = |id: &i64| global_id(Kind::PhotoJob, *id);
        self.deleted_jobs.iter().map(id).collect()
    }
    /// Purchases started or changed (paid, refunded, disputed), as they are now.
    async fn purchases(&self) -> Vec<Purchase> {
        self.purchases.iter().cloned().map(Purchase).collect()
    }
    /// Notifications written or changed (read), as they are now.
    async fn notifications(&self) -> Vec<Notification> {
        self.notifications
            .iter()
            .cloned()
            .map(Notification::from)
            .collect()
    }
    /// Photo uploads deleted (tombstones: their ids).
    async fn deleted_upload_ids(&self) -> Vec<ID> {
        let id = |id: &i64| global_id(Kind::PhotoUpload, *id);
        self.deleted_uploads.iter().map(id).collect()
    }
    /// The credit account, when it changed (a ledger entry, free photos spent).
    async fn credits(&self) -> Option<CreditAccount> {
        self.credits.clone()
    }
    /// The billing subscription, when it changed.
    async fn subscription(&self) -> Option<BillingSubscription> {
        self.subscription.clone()
    }
    /// The usage meters, when usage changed (photos processed, uploads kept).
    async fn usage(&self) -> Option<Vec<UsageMeter>> {
        self.usage.clone()
    }
    /// Whether the notification preferences changed.
    async fn notification_preferences_changed(&self) -> bool {
        self.preferences
    }
}

/// `CURSOR_EXPIRED`: what a client whose cursor cannot be replayed does.
fn expired(why: &str) -> AppError {
    AppError::CursorExpired(format!(
        "{why}: read the page again and start from its cursor"
    ))
}

/// What changed for `user_id` after `since`, up to the version `state` was read at (whose
/// billing, credits and usage are the current ones); one page of at most [`PAGE`] things.
/// `CURSOR_EXPIRED` for a position past that version (not this viewer's) or pruned.
pub(crate) async fn read(
    conn: &mut impl Db,
    user_id: &str,
    since: i64,
    state: &ViewerState,
    allowance: i32,
) -> AppResult<ViewerChanges> {
    let head = state.versions.viewer;
    if since > head {
        return Err(expired("this cursor is not from this account's changes"));
    }
    if since < changes::pruned_through(conn, user_id).await? {
        return Err(expired("this cursor is older than the changes kept"));
    }
    let mut entries = changes::window(conn, user_id, since, head, PAGE).await?;
    let (position, has_more) = match usize::try_from(PAGE).ok().and_then(|p| entries.get(p)) {
        None => (head, false),
        Some(first_left) => {
            // Up to the position of the first thing left out, less one: a page never splits
            // the things of one position, unless one statement changed more than a page.
            let cut = first_left.seq;
            entries.retain(|e| e.seq < cut);
            if entries.is_empty() {
                entries = changes::window(conn, user_id, since, cut, i64::MAX / 2).await?;
                (cut, cut < head)
            } else {
                (cut - 1, true)
            }
        }
    };
    let ids = |kind: &str| -> Vec<i64> {
        entries
            .iter()
            .filter(|e| e.kind == kind)
            .filter_map(|e| e.object_id)
            .collect()
    };
    let has = |kind: &str| entries.iter().any(|e: &Entry| e.kind == kind);
    let job_ids = ids("job");
    let mut jobs: HashMap<i64, JobRow> = changes::jobs(conn, user_id, &job_ids)
        .await?
        .into_iter()
        .map(|job| (job.id, job))
        .collect();
    let mut kept = Vec::new();
    let mut deleted_jobs = Vec::new();
    for id in job_ids {
        match jobs.remove(&id) {
            Some(job) => kept.push(job),
            None => deleted_jobs.push(id),
        }
    }
    let purchase_ids = ids("purchase");
    let mut purchases: HashMap<i64, PurchaseRow> = changes::purchases(conn, user_id, &purchase_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let purchases = purchase_ids
        .iter()
        .filter_map(|id| purchases.remove(id))
        .collect();
    let keys: Vec<(String, i64)> = ids("notification")
        .into_iter()
        .map(|id| (user_id.to_owned(), id))
        .collect();
    let notifications = if keys.is_empty() {
        Vec::new()
    } else {
        NotificationRow::load(conn, &keys).await?
    };
    let upload_ids = ids("upload");
    let left = changes::uploads_left(conn, user_id, &upload_ids).await?;
    let deleted_uploads = upload_ids
        .into_iter()
        .filter(|id| !left.contains(id))
        .collect();
    Ok(ViewerChanges {
        cursor: position,
        has_more,
        jobs: kept,
        deleted_jobs,
        purchases,
        notifications,
        deleted_uploads,
        credits: has("credits").then(|| CreditAccount {
            row: state.credits.clone(),
            free_photo_allowance: allowance,
        }),
        subscription: has("subscription").then(|| BillingSubscription(state.billing.clone())),
        usage: (has("usage") || has("upload")).then(|| UsageMeter::of(state)),
        preferences: has("preferences"),
    })
}

/// What changed for `user_id` after `since`, as [`read`] answers it, with the viewer's
/// version, state and changed objects all read in one snapshot (a read-only repeatable-read
/// transaction): each thing as it was at the answer's cursor, so a thing that changes again
/// comes again once, with its next state. `None` when the viewer is gone.
pub(crate) async fn read_consistent(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    since: Option<i64>,
    allowance: i32,
) -> AppResult<Option<ViewerChanges>> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn| {
            let Some(state) = SessionUser::find_by_user_id(conn, user_id)
                .await?
                .and_then(|user| user.state)
            else {
                return Ok(None);
            };
            match since {
                None => Ok(Some(ViewerChanges::none(state.versions.viewer))),
                Some(at) => read(conn, user_id, at, &state, allowance).await.map(Some),
            }
        })
        .await
}

/// A subscriber following a viewer's changes from a position.
struct Follow {
    subscriber: Subscriber,
    pool: DbPool,
    user_id: String,
    /// Where the client is; `None` until the start is read (no `since`: from now).
    at: Option<i64>,
    /// Whether to read again at once: the replay, or a page with more after it.
    again: bool,
    /// Whether the next answer goes out even empty (the replay's first: "caught up").
    say_empty: bool,
    allowance: i32,
}

/// The changes after `since` (from now without), then each change as it commits, read from the
/// log after the subscriber's position whenever the hub says the viewer's version moved past
/// it (or the subscriber fell behind): no gap and no duplicate at the seam, since every answer
/// comes from the log. The replay's first answer goes out even when empty.
pub(crate) fn follow(
    subscriber: Subscriber,
    pool: DbPool,
    user_id: String,
    since: Option<i64>,
    allowance: i32,
) -> impl Stream<Item = async_graphql::Result<ViewerChanges>> + use<> {
    let follow = Follow {
        subscriber,
        pool,
        user_id,
        at: since,
        again: true,
        say_empty: since.is_some(),
        allowance,
    };
    futures_util::stream::unfold(Some(follow), |follow| async move {
        let mut follow = follow?;
        loop {
            if !follow.again {
                let moved = match follow.subscriber.next().await {
                    Ok(Event::Logged(version)) => follow.at.is_none_or(|at| version > at),
                    Ok(_) => false,
                    Err(_missed) => true,
                };
                if !moved {
                    continue;
                }
            }
            // Boxed: the idle subscription holds only what it waits on (memory per connection).
            match Box::pin(next_changes(&follow)).await {
                Ok(None) => return None,
                Ok(Some(changes)) => {
                    let start = follow.at.is_none();
                    follow.at = Some(changes.cursor);
                    follow.again = changes.has_more;
                    let say = !start && (follow.say_empty || !changes.is_empty());
                    follow.say_empty = false;
                    if say {
                        return Some((Ok(changes), Some(follow)));
                    }
                }
                Err(error) => return Some((Err(error.into()), None)),
            }
        }
    })
}

/// The next answer for `follow`: its start (the version now) when it has none; `None` when the
/// viewer is gone.
async fn next_changes(follow: &Follow) -> AppResult<Option<ViewerChanges>> {
    let mut conn = follow.pool.get().await?;
    read_consistent(&mut conn, &follow.user_id, follow.at, follow.allowance).await
}
