//! Request ids: `X-Request-Id` on every request and response, in logs, traces and masked
//! errors.

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use tower_http::request_id::{MakeRequestId, RequestId};

/// The request id header, set on every request and response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids in UUID form without a system call each (a `getrandom` per request showed in
/// the benchmark's syscall count): a random 64-bit prefix per process, then a counter.
#[derive(Clone)]
pub(crate) struct RequestIds {
    prefix: u64,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestIds {
    /// A new process-wide prefix, counting from 0.
    pub(crate) fn new() -> Self {
        RequestIds {
            prefix: uuid::Uuid::new_v4().as_u64_pair().0,
            next: Arc::default(),
        }
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // RFC 9562's variant bits (10) over the counter's top two, which 2^62 requests never reach.
        let id = uuid::Uuid::from_u64_pair(self.prefix, (n & (u64::MAX >> 2)) | (1 << 63));
        HeaderValue::from_str(&id.hyphenated().to_string())
            .ok()
            .map(RequestId::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_uuids() {
        let mut ids = RequestIds::new();
        let request = axum::http::Request::new(());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let id = ids.make_request_id(&request).unwrap();
            let text = id.header_value().to_str().unwrap().to_owned();
            let uuid = uuid::Uuid::parse_str(&text).unwrap();
            assert_eq!(uuid.get_version_num(), 4);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            assert!(seen.insert(text));
        }
        // Another process (another prefix) does not repeat them.
        let mut other = RequestIds::new();
        assert_ne!(
            other.make_request_id(&request).unwrap().header_value(),
            RequestIds {
                prefix: ids.prefix,
                next: Arc::default()
            }
            .make_request_id(&request)
            .unwrap()
            .header_value()
        );
    }
}
