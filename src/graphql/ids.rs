//! Global object ids: opaque to clients (base64url of `Type:rowid`). Resolving one always
//! filters by the viewer (see [`super::node`]).

use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Types that have global ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A photo job.
    PhotoJob,
    /// A credit ledger entry.
    CreditTransaction,
    /// A credit purchase.
    Purchase,
    /// A photo upload (a job's photo or result).
    PhotoUpload,
    /// A notification.
    Notification,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PhotoJob => "PhotoJob",
            Kind::CreditTransaction => "CreditTransaction",
            Kind::Purchase => "Purchase",
            Kind::PhotoUpload => "PhotoUpload",
            Kind::Notification => "Notification",
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
    let kind = [
        Kind::PhotoJob,
        Kind::CreditTransaction,
        Kind::Purchase,
        Kind::PhotoUpload,
        Kind::Notification,
    ]
    .into_iter()
    .find(|k| k.name() == name)?;
    let row: i64 = row.parse().ok()?;
    (row > 0).then_some((kind, row))
}

/// The row id inside a global id of `kind`, or `None`.
pub fn row_id(id: &str, kind: Kind) -> Option<i64> {
    parse_global_id(id).and_then(|(k, row)| (k == kind).then_some(row))
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
