//! Global object ids and the `Node` interface. An id is opaque to clients
//! (base64url of `Type:rowid`); resolving one always filters by the viewer.

use async_graphql::{Context, ID, Interface};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::db::credits::LedgerEntry;
use crate::db::photo_jobs::PhotoJob as PhotoJobRow;
use crate::db::purchases::Purchase as PurchaseRow;
use crate::error::AppResult;
use crate::graphql::credits::CreditTransaction;
use crate::graphql::photo_jobs::PhotoJob;
use crate::graphql::purchases::Purchase;
use crate::graphql::read;

/// Types that have global ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A photo job.
    PhotoJob,
    /// A credit ledger entry.
    CreditTransaction,
    /// A credit purchase.
    Purchase,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PhotoJob => "PhotoJob",
            Kind::CreditTransaction => "CreditTransaction",
            Kind::Purchase => "Purchase",
        }
    }
}

/// The global id of a row.
pub fn global_id(kind: Kind, id: i64) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{id}", kind.name())))
}

/// Reads a global id; `None` for anything malformed.
pub fn parse_global_id(id: &str) -> Option<(Kind, i64)> {
    let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (name, row) = text.split_once(':')?;
    let kind = [Kind::PhotoJob, Kind::CreditTransaction, Kind::Purchase]
        .into_iter()
        .find(|k| k.name() == name)?;
    let row: i64 = row.parse().ok()?;
    (row > 0).then_some((kind, row))
}

/// The row id inside a global id of `kind`, or `None`.
pub fn row_id(id: &str, kind: Kind) -> Option<i64> {
    parse_global_id(id).and_then(|(k, row)| (k == kind).then_some(row))
}

/// An object with a global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The object's opaque global id."))]
pub enum Node {
    /// A photo job.
    PhotoJob(PhotoJob),
    /// A credit ledger entry.
    CreditTransaction(CreditTransaction),
    /// A credit purchase.
    Purchase(Purchase),
}

/// The viewer's object with this global id, if there is one.
pub async fn load(ctx: &Context<'_>, viewer_id: &str, id: &str) -> AppResult<Option<Node>> {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_round_trip_and_reject_garbage() {
        let id = global_id(Kind::PhotoJob, 42);
        assert_eq!(parse_global_id(&id), Some((Kind::PhotoJob, 42)));
        assert_eq!(row_id(&id, Kind::CreditTransaction), None);
        assert_eq!(parse_global_id("not-an-id"), None);
        assert_eq!(
            parse_global_id(&URL_SAFE_NO_PAD.encode("PhotoJob:-1")),
            None
        );
        assert_eq!(parse_global_id(&URL_SAFE_NO_PAD.encode("User:1")), None);
    }
}
