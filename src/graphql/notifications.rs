//! The viewer's notifications: the inbox (`Viewer.notifications`, `unreadNotificationCount`),
//! marking read, the preferences per kind and channel, and the push devices. The rows are
//! written by the database with their causes (see `crate::db::notifications`); their words
//! come from [`crate::notify::words`], as the emails' and pushes' do.

use std::collections::HashMap;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Union};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::billing::BillingSubscription;
use super::connection::{Totals, arguments, connection, page};
use super::context::{conn, read, viewer_id};
use super::ids::{Kind, global_id, row_id};
use super::photo_jobs::PhotoJob;
use super::purchases::Purchase;
use crate::db::notifications::{self as rows, Notification as Row, PushDevice as DeviceRow};
pub(crate) use crate::db::notifications::{NotificationKind, PushPlatform};
use crate::db::photo_jobs::PhotoJob as JobRow;
use crate::db::purchases::Purchase as PurchaseRow;
use crate::db::request::Db;
use crate::db::schema::{notifications, photo_jobs, purchases};
use crate::db::subscriptions::BillingState;
use crate::error::{AppError, AppResult};
use crate::notify::push::is_expo_token;
use crate::notify::words::{Words, words};

/// What a notification is about.
#[derive(Union)]
pub(crate) enum NotificationSubject {
    /// A photo job.
    PhotoJob(PhotoJob),
    /// A credit purchase.
    Purchase(Purchase),
    /// The billing subscription.
    BillingSubscription(BillingSubscription),
}

/// Something the viewer should hear about, in their inbox (and, as they chose, by email and
/// push).
pub(crate) struct Notification {
    row: Row,
    /// The subject, when the page loaded it with the others (taken by the first resolver
    /// that asks: an alias asking again reads it again).
    subject: std::sync::Mutex<Option<Box<Option<NotificationSubject>>>>,
    /// Its title and body, made once for both fields.
    words: std::sync::OnceLock<Words>,
}

impl From<Row> for Notification {
    fn from(row: Row) -> Self {
        Notification::new(row, None)
    }
}

impl Notification {
    /// `row`, with its subject when the page loaded it.
    fn new(row: Row, subject: Option<Box<Option<NotificationSubject>>>) -> Self {
        Notification {
            row,
            subject: std::sync::Mutex::new(subject),
            words: std::sync::OnceLock::new(),
        }
    }

    fn words(&self) -> &Words {
        self.words
            .get_or_init(|| words(self.row.kind, &self.row.facts))
    }
}

/// Something the viewer should hear about, in their inbox (and, as they chose, by email and
/// push).
#[Object]
impl Notification {
    /// The notification's opaque global id.
    pub async fn id(&self) -> ID {
        global_id(Kind::Notification, self.row.id)
    }
    /// What it tells.
    async fn kind(&self) -> NotificationKind {
        self.row.kind
    }
    /// One line, written for people.
    async fn title(&self) -> String {
        self.words().title.clone()
    }
    /// A sentence or two, written for people.
    async fn body(&self) -> String {
        self.words().body.clone()
    }
    /// When it was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    /// When the viewer marked it read; null while unread.
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.row.read_at
    }
    /// What it is about: the job, the purchase or the subscription (null for CREDITS_LOW, and
    /// once the job is deleted).
    async fn subject(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<NotificationSubject>> {
        let loaded = self
            .subject
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(subject) = loaded {
            return Ok(*subject);
        }
        let conn = read(ctx).await?;
        let mut subjects = subjects(
            &mut &**conn,
            &self.row.user_id,
            std::slice::from_ref(&self.row),
        )
        .await
        .map_err(AppError::from)?;
        Ok(subjects.remove(&self.row.id).flatten())
    }
}

/// The subjects of `rows` (all the user's), by notification id: at most three statements.
async fn subjects(
    conn: &mut impl Db,
    user_id: &str,
    rows: &[Row],
) -> QueryResult<HashMap<i64, Option<NotificationSubject>>> {
    let job_ids: Vec<i64> = rows.iter().filter_map(|r| r.photo_job_id).collect();
    let purchase_ids: Vec<i64> = rows.iter().filter_map(|r| r.purchase_id).collect();
    let mut jobs: HashMap<i64, JobRow> = HashMap::new();
    if !job_ids.is_empty() {
        let loaded: Vec<JobRow> = photo_jobs::table
            .filter(photo_jobs::user_id.eq(user_id))
            .filter(photo_jobs::id.eq_any(&job_ids))
            .select(JobRow::as_select())
            .load(conn)
            .await?;
        jobs = loaded.into_iter().map(|j| (j.id, j)).collect();
    }
    let mut bought: HashMap<i64, PurchaseRow> = HashMap::new();
    if !purchase_ids.is_empty() {
        let loaded: Vec<PurchaseRow> = purchases::table
            .filter(purchases::user_id.eq(user_id))
            .filter(purchases::id.eq_any(&purchase_ids))
            .select(PurchaseRow::as_select())
            .load(conn)
            .await?;
        bought = loaded.into_iter().map(|p| (p.id, p)).collect();
    }
    let billing = if rows.iter().any(|r| r.subscription_id.is_some()) {
        BillingState::load_many(conn, &[user_id.to_owned()])
            .await?
            .remove(user_id)
    } else {
        None
    };
    Ok(rows
        .iter()
        .map(|r| {
            // Several notifications may be about one job or purchase (a refund, then a
            // dispute): each gets it.
            let subject = if let Some(id) = r.photo_job_id {
                jobs.get(&id)
                    .map(|j| NotificationSubject::PhotoJob(j.clone().into()))
            } else if let Some(id) = r.purchase_id {
                bought
                    .get(&id)
                    .map(|p| NotificationSubject::Purchase(Purchase(p.clone())))
            } else if r.subscription_id.is_some() {
                billing
                    .clone()
                    .map(|b| NotificationSubject::BillingSubscription(BillingSubscription(b)))
            } else {
                None
            };
            (r.id, subject)
        })
        .collect())
}

/// Counts the viewer's notifications (of the listed ones), only when `totalCount` is selected.
pub(crate) struct NotificationTotals {
    user_id: String,
    unread_only: bool,
}

impl Totals for NotificationTotals {
    async fn total_count(&self, ctx: &Context<'_>) -> AppResult<i64> {
        let conn = read(ctx).await?;
        Ok(if self.unread_only {
            Row::unread_count(&mut &**conn, &self.user_id).await?
        } else {
            Row::count(&mut &**conn, &self.user_id).await?
        })
    }
}

connection!(
    NotificationConnection,
    NotificationEdge,
    Notification,
    NotificationTotals,
    "the viewer's notifications, newest first"
);

/// The viewer's notifications, newest first (unread ones only when `unread_only`), with their
/// subjects read for the whole page when selected.
pub(crate) async fn list(
    ctx: &Context<'_>,
    user_id: &str,
    first: Option<i32>,
    after: Option<String>,
    unread_only: bool,
) -> AppResult<NotificationConnection> {
    let (first, after) = arguments(first, after.as_deref())?;
    let conn = read(ctx).await?;
    let mut db = &**conn;
    let rows = if unread_only {
        Row::unread_page(&mut db, user_id, after, first + 1).await
    } else {
        Row::page(&mut db, user_id, after, first + 1).await
    }
    .map_err(AppError::from)?;
    let look = ctx.look_ahead();
    let wants_subject = look.field("edges").field("node").field("subject").exists()
        || look.field("nodes").field("subject").exists();
    let mut subjects = if wants_subject {
        subjects(&mut db, user_id, &rows)
            .await
            .map_err(AppError::from)?
    } else {
        HashMap::new()
    };
    drop(conn);
    let (edges, info) = page(rows, first, after, Row::cursor, |row| {
        let subject = subjects.remove(&row.id).map(Box::new);
        Notification::new(row, subject)
    });
    let totals = NotificationTotals {
        user_id: user_id.to_owned(),
        unread_only,
    };
    Ok(NotificationConnection::new(edges, info, totals))
}

/// How many of the viewer's notifications are unread.
pub(crate) async fn unread_count(ctx: &Context<'_>, user_id: &str) -> AppResult<i32> {
    let conn = read(ctx).await?;
    let count = Row::unread_count(&mut &**conn, user_id).await?;
    Ok(i32::try_from(count).unwrap_or(i32::MAX))
}

/// Whether a kind reaches the viewer by email and by push (the inbox always).
#[derive(SimpleObject)]
pub(crate) struct NotificationPreference {
    /// The kind.
    kind: NotificationKind,
    /// Always true: every notification is in the inbox.
    inbox: bool,
    /// Emailed (billing kinds even before the address is verified; others only after).
    email: bool,
    /// Pushed to the viewer's registered devices.
    push: bool,
}

/// The viewer's preferences for every kind (their choices, else the defaults).
pub(crate) async fn preferences(
    ctx: &Context<'_>,
    user_id: &str,
) -> AppResult<Vec<NotificationPreference>> {
    let conn = read(ctx).await?;
    Ok(rows::preferences(&mut &**conn, user_id)
        .await?
        .into_iter()
        .map(|p| NotificationPreference {
            kind: p.kind,
            inbox: true,
            email: p.email,
            push: p.push,
        })
        .collect())
}

/// Which notifications to mark read: `ids`, or `all: true`.
#[derive(InputObject)]
pub(crate) struct MarkNotificationsReadInput {
    /// The notifications (the viewer's; one that is not is NOT_FOUND and nothing is marked).
    ids: Option<Vec<ID>>,
    /// Every unread notification of the viewer's.
    all: Option<bool>,
}

/// What marking read did.
#[derive(SimpleObject)]
pub(crate) struct MarkNotificationsReadPayload {
    /// The notifications this marked read (those already read are not listed).
    notifications: Vec<Notification>,
    /// How many are still unread.
    unread_count: i32,
}

/// A kind's channels to change; a channel left out keeps its setting.
#[derive(InputObject)]
pub(crate) struct NotificationPreferenceInput {
    /// The kind.
    kind: NotificationKind,
    /// Email on or off.
    email: Option<bool>,
    /// Push on or off.
    push: Option<bool>,
}

/// The kinds to change.
#[derive(InputObject)]
pub(crate) struct UpdateNotificationPreferencesInput {
    /// One entry per kind to change (each kind at most once).
    preferences: Vec<NotificationPreferenceInput>,
}

/// A device to push to.
#[derive(InputObject)]
pub(crate) struct RegisterPushDeviceInput {
    /// Its platform.
    platform: PushPlatform,
    /// Its Expo push token (`ExponentPushToken[…]`). A token registered by someone else
    /// moves to the viewer.
    token: String,
}

/// A device to stop pushing to.
#[derive(InputObject)]
pub(crate) struct UnregisterPushDeviceInput {
    /// Its Expo push token.
    token: String,
}

/// A device the viewer's pushes go to.
#[derive(SimpleObject)]
pub(crate) struct PushDevice {
    /// Its platform.
    platform: PushPlatform,
    /// When it was first registered.
    created_at: DateTime<Utc>,
    /// When it was last registered.
    updated_at: DateTime<Utc>,
}

impl From<DeviceRow> for PushDevice {
    fn from(row: DeviceRow) -> Self {
        PushDevice {
            platform: row.platform,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The longest push token accepted.
const MAX_TOKEN: usize = 256;

/// Notifications' mutations.
#[derive(Default)]
pub(crate) struct NotificationMutation;

/// Notifications' mutations.
#[Object]
impl NotificationMutation {
    /// Marks notifications read: `ids` (NOT_FOUND, and nothing marked, when one is not the
    /// viewer's) or `all: true`. Marking a read one again changes nothing.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The notifications, or all of them.")] input: MarkNotificationsReadInput,
    ) -> async_graphql::Result<MarkNotificationsReadPayload> {
        let user_id = viewer_id(ctx).await?;
        let ids: Option<Vec<i64>> = match (input.ids, input.all) {
            (Some(ids), None | Some(false)) if !ids.is_empty() && ids.len() <= 100 => Some(
                ids.iter()
                    .map(|id| row_id(id, Kind::Notification))
                    .collect::<Option<Vec<_>>>()
                    .ok_or(AppError::NotFound("notification"))?,
            ),
            (None, Some(true)) => None,
            _ => {
                return Err(
                    AppError::bad_input("give either ids (1 to 100 of them) or all: true").into(),
                );
            }
        };
        let mut conn = conn(ctx).await?;
        let marked = conn
            .transaction(async |conn| {
                if let Some(ids) = &ids {
                    let mine: i64 = notifications::table
                        .filter(notifications::user_id.eq(&user_id))
                        .filter(notifications::id.eq_any(ids))
                        .count()
                        .get_result(conn)
                        .await?;
                    let mut distinct = ids.clone();
                    distinct.sort_unstable();
                    distinct.dedup();
                    if mine != distinct.len() as i64 {
                        return Err(AppError::NotFound("notification"));
                    }
                }
                let marked = Row::mark_read(conn, &user_id, ids.as_deref()).await?;
                let unread = Row::unread_count(conn, &user_id).await?;
                Ok::<_, AppError>((marked, unread))
            })
            .await?;
        Ok(MarkNotificationsReadPayload {
            notifications: marked.0.into_iter().map(Notification::from).collect(),
            unread_count: i32::try_from(marked.1).unwrap_or(i32::MAX),
        })
    }

    /// Turns kinds' email or push on or off (the inbox is always on). Returns every kind's
    /// preferences.
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The kinds to change.")] input: UpdateNotificationPreferencesInput,
    ) -> async_graphql::Result<Vec<NotificationPreference>> {
        let user_id = viewer_id(ctx).await?;
        let mut kinds: Vec<NotificationKind> = input.preferences.iter().map(|p| p.kind).collect();
        kinds.sort_by_key(|k| k.as_db());
        kinds.dedup();
        if kinds.len() != input.preferences.len() {
            return Err(AppError::invalid_field("preferences", "each kind at most once").into());
        }
        let changes: Vec<_> = input
            .preferences
            .iter()
            .map(|p| (p.kind, p.email, p.push))
            .collect();
        {
            let mut conn = conn(ctx).await?;
            conn.transaction(async |conn| rows::set_preferences(conn, &user_id, &changes).await)
                .await
                .map_err(AppError::from)?;
        }
        Ok(preferences(ctx, &user_id).await?)
    }

    /// Registers a device for push notifications (again: it is refreshed). A token belongs to
    /// one person: registered by the viewer, it stops receiving anyone else's.
    async fn register_push_device(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The device.")] input: RegisterPushDeviceInput,
    ) -> async_graphql::Result<PushDevice> {
        let user_id = viewer_id(ctx).await?;
        let token = input.token.trim();
        if token.len() > MAX_TOKEN || !is_expo_token(token) {
            return Err(AppError::invalid_field(
                "token",
                "token must be an Expo push token (ExponentPushToken[…])",
            )
            .into());
        }
        let mut conn = conn(ctx).await?;
        let device = conn
            .transaction(async |conn| {
                DeviceRow::register(conn, &user_id, input.platform, token).await
            })
            .await
            .map_err(AppError::from)?;
        Ok(device.into())
    }

    /// Stops pushing to a device of the viewer's; false when the token was not theirs.
    async fn unregister_push_device(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The device.")] input: UnregisterPushDeviceInput,
    ) -> async_graphql::Result<bool> {
        let user_id = viewer_id(ctx).await?;
        let mut conn = conn(ctx).await?;
        Ok(conn
            .transaction(async |conn| {
                DeviceRow::unregister(conn, &user_id, input.token.trim()).await
            })
            .await
            .map_err(AppError::from)?)
    }
}
