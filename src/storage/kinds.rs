//! The content types bff stores, and how their first bytes look: a client's word for what it
//! uploaded is checked against the object itself before a job is charged.

/// Photo types a client may upload: JPEG, PNG, WebP, HEIC/HEIF.
pub const PHOTO_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "image/heif",
];

/// Result types a worker may upload: a ZIP of the processed photos, or one photo.
pub const RESULT_TYPES: &[&str] = &[
    "application/zip",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "image/heif",
];

/// The canonical form of a declared content type (lowercase, without parameters) if it is
/// one of `allowed`.
pub fn accepted(content_type: &str, allowed: &[&'static str]) -> Option<&'static str> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    allowed
        .iter()
        .copied()
        .find(|t| t.eq_ignore_ascii_case(essence))
}

/// Whether `head` (an object's first bytes) starts like `content_type` (canonical).
pub fn looks_like(content_type: &str, head: &[u8]) -> bool {
    match content_type {
        "image/jpeg" => head.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/webp" => head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP",
        "image/heic" | "image/heif" => {
            // An ISO base media file: a `ftyp` box whose major brand is one of HEIF's.
            head.len() >= 12
                && &head[4..8] == b"ftyp"
                && matches!(
                    &head[8..12],
                    b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1"
                )
        }
        "application/zip" => head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06"),
        _ => false,
    }
}

/// The file extension browsers expect for a canonical type.
pub fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/heic" => "heic",
        "image/heif" => "heif",
        "application/zip" => "zip",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_are_checked_against_the_bytes() {
        assert_eq!(accepted("IMAGE/JPEG; q=1", PHOTO_TYPES), Some("image/jpeg"));
        assert_eq!(accepted("image/gif", PHOTO_TYPES), None);
        assert_eq!(accepted("application/zip", PHOTO_TYPES), None);
        assert!(looks_like("image/jpeg", &[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(!looks_like("image/png", &[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(looks_like("image/webp", b"RIFF\x10\0\0\0WEBPVP8 "));
        assert!(looks_like("image/heic", b"\0\0\0\x18ftypheic\0\0\0\0"));
        assert!(!looks_like("image/heic", b"\0\0\0\x18ftypisom\0\0\0\0"));
        assert!(looks_like("application/zip", b"PK\x03\x04"));
        assert!(!looks_like("image/png", b""));
    }
}
