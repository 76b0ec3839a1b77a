//! What a GraphQL-over-HTTP request and its answer are written in: `Accept` decides the
//! answer's media type (and with it the status codes); only JSON bodies execute.

use axum::http::{HeaderMap, HeaderValue, header};

/// The media types a response can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MediaType {
    /// `application/graphql-response+json`: status codes carry meaning.
    GraphqlResponse,
    /// `application/json`: legacy clients; always 200 once the request is understood.
    Json,
}

impl MediaType {
    pub(super) fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        })
    }
}

/// Picks the response media type from `Accept`; `None` when neither is acceptable (406).
pub(super) fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    let (mut graphql_q, mut json_q) = (0.0f32, 0.0f32);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/graphql-response+json" => graphql_q = graphql_q.max(q),
            "application/json" => json_q = json_q.max(q),
            "application/*" | "*/*" => json_q = json_q.max(q),
            _ => {}
        }
    }
    if graphql_q <= 0.0 && json_q <= 0.0 {
        None
    } else if graphql_q >= json_q {
        Some(MediaType::GraphqlResponse)
    } else {
        Some(MediaType::Json)
    }
}

/// Whether `Content-Type` is JSON in UTF-8 (the only bodies that execute).
pub(super) fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
        && parts.all(|p| {
            let p = p.trim();
            p.is_empty()
                || !p.to_ascii_lowercase().starts_with("charset=")
                || p[8..].trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn negotiates_the_graphql_response_media_type_when_asked() {
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(
            negotiate(&accept("application/json")),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("text/html")), None);
    }
}
