//! The `Node` interface: any of the viewer's objects by its global id.

use async_graphql::{Context, Interface};

use super::context::read;
use super::credits::CreditTransaction;
use super::ids::{Kind, parse_global_id};
use super::notifications::Notification;
use super::photo_jobs::PhotoJob;
use super::purchases::Purchase;
use crate::db::credits::LedgerEntry;
use crate::db::notifications::Notification as NotificationRow;
use crate::db::photo_jobs::PhotoJob as PhotoJobRow;
use crate::db::purchases::Purchase as PurchaseRow;
use crate::error::AppResult;

/// An object with a global id.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "async_graphql::ID",
    desc = "The object's opaque global id."
))]
pub(crate) enum Node {
    /// A photo job.
    PhotoJob(PhotoJob),
    /// A credit ledger entry.
    CreditTransaction(CreditTransaction),
    /// A credit purchase.
    Purchase(Purchase),
    /// A notification.
    Notification(Notification),
}

/// The viewer's object with this global id, if there is one.
pub(crate) async fn load(ctx: &Context<'_>, viewer_id: &str, id: &str) -> AppResult<Option<Node>> {
    let Some((kind, row)) = parse_global_id(id) else {
        return Ok(None);
    };
    let conn = read(ctx).await?;
    let mut conn: &diesel_async::AsyncPgConnection = &conn;
    Ok(match kind {
        Kind::PhotoJob => PhotoJobRow::find(&mut conn, viewer_id, row)
            .await?
            .map(|job| Node::PhotoJob(job.into())),
        Kind::CreditTransaction => LedgerEntry::find(&mut conn, viewer_id, row)
            .await?
            .map(|entry| Node::CreditTransaction(CreditTransaction(entry))),
        Kind::Purchase => PurchaseRow::find(&mut conn, viewer_id, row)
            .await?
            .map(|purchase| Node::Purchase(Purchase(purchase))),
        Kind::Notification => NotificationRow::find(&mut conn, viewer_id, row)
            .await?
            .map(|n| Node::Notification(n.into())),
        // Uploads are reached through their job (`PhotoJob.photos`), not as nodes.
        Kind::PhotoUpload => None,
    })
}
