//! Keyset pagination, newest first: a page continues strictly after the `(created_at, id)`
//! of the last row seen, so rows inserted meanwhile never shift a page or repeat one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

/// The position of a row in a newest-first list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The row's creation time.
    pub created_at: DateTime<Utc>,
    /// The row's id, the tiebreaker.
    pub id: i64,
}

/// Most rows one page may ask for.
pub const MAX_PAGE_SIZE: i32 = 100;

impl Cursor {
    /// The opaque string clients pass back as `after`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}:{}",
            self.created_at.timestamp_micros(),
            self.id
        ))
    }

    /// Reads a string made by [`Cursor::encode`]; `None` for anything else.
    pub fn decode(value: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let (micros, id) = text.split_once(':')?;
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}
