//! Photo storage through the S3 API. bff never moves a photo's bytes for a client: it presigns
//! URLs (SigV4 query authentication, by `rusty-s3`) bound to one key, one method and — for
//! uploads — one content type and length, valid for minutes, and it makes four small requests
//! of its own: a server-side copy (a photo a job will use, to a key no upload URL names), a
//! ranged read of an object's first bytes (does it exist, with the declared size, and is it
//! really an image of the declared type?), a delete, and a put (`bff check`'s probe, the demo
//! data). Credentials stay here.
//!
//! Keys name their owner: `{prefix}users/{user id}/uploads/{uuid}` for a photo as uploaded,
//! `{prefix}users/{user id}/photos/{uuid}` for the copy of it a job checked and uses, and
//! `{prefix}users/{user id}/results/{job id}/{uuid}` for a job's result.

pub mod embedded;
pub mod kinds;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use secrecy::ExposeSecret;

use crate::config::storage::{Bucket as BucketConfig, Storage as StorageConfig};

/// How many leading bytes a probe reads: enough for every signature in [`kinds`].
pub const PROBE_BYTES: usize = 32;

/// Storage could not be used: unreachable, refusing our credentials, or answering nonsense.
#[derive(Debug, thiserror::Error)]
#[error("object storage: {0}")]
pub struct StorageError(pub String);

/// A presigned request: where to send it, the headers it must carry, and until when it works.
#[derive(Clone, Debug)]
pub struct Presigned {
    /// The URL, with its signature in the query.
    pub url: String,
    /// Headers the request must send exactly (they are signed).
    pub headers: Vec<(&'static str, String)>,
    /// When the URL stops working.
    pub expires_at: DateTime<Utc>,
}

/// What a probe found of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Its size in bytes.
    pub size: i64,
    /// Its first bytes (up to [`PROBE_BYTES`]).
    pub head: Vec<u8>,
}

/// A bucket and the credentials to presign for it.
#[derive(Debug)]
pub struct Store {
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    http: reqwest::Client,
    url_lifetime: Duration,
}

impl Store {
    /// The store of `config`; the error names what is wrong.
    pub fn new(config: &BucketConfig, url_lifetime: Duration) -> Result<Store, String> {
        let (endpoint, style) = match &config.endpoint {
            Some(endpoint) => (endpoint.clone(), UrlStyle::Path),
            None => (
                format!("https://s3.{}.amazonaws.com", config.region),
                UrlStyle::VirtualHost,
            ),
        };
        let endpoint = endpoint
            .parse()
            .map_err(|e| format!("AWS_ENDPOINT_URL: {e}"))?;
        let bucket = Bucket::new(endpoint, style, config.name.clone(), config.region.clone())
            .map_err(|e| format!("BFF_STORAGE_URL: {e}"))?;
        let key = config.access_key_id.clone();
        let secret = config.secret_access_key.expose_secret().to_owned();
        let credentials = match &config.session_token {
            Some(token) => Credentials::new_with_token(key, secret, token.expose_secret()),
            None => Credentials::new(key, secret),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("object storage client: {e}"))?;
        Ok(Store {
            bucket,
            credentials,
            prefix: config.prefix.clone(),
            http,
            url_lifetime,
        })
    }

    /// `s3://bucket/prefix` as configured, for messages.
    pub fn describe(&self) -> String {
        format!(
            "s3://{}/{} at {}",
            self.bucket.name(),
            self.prefix,
            self.bucket.base_url()
        )
    }

    /// How long presigned URLs work.
    pub fn url_lifetime(&self) -> Duration {
        self.url_lifetime
    }

    /// A new key for one of `user_id`'s photos.
    pub fn upload_key(&self, user_id: &str) -> String {
        format!(
            "{}users/{}/uploads/{}",
            self.prefix,
            key_segment(user_id),
            uuid::Uuid::new_v4()
        )
    }

    /// A new key for the copy of one of `user_id`'s photos that a job checks and uses: no
    /// presigned `PUT` ever names it, so its bytes are the ones checked.
    pub fn checked_key(&self, user_id: &str) -> String {
        format!(
            "{}users/{}/photos/{}",
            self.prefix,
            key_segment(user_id),
            uuid::Uuid::new_v4()
        )
    }

    /// A new key for the result of `user_id`'s job `job_id`.
    pub fn result_key(&self, user_id: &str, job_id: i64) -> String {
        format!(
            "{}users/{}/results/{job_id}/{}",
            self.prefix,
            key_segment(user_id),
            uuid::Uuid::new_v4()
        )
    }

    /// The moment a URL signed now stops working (signatures carry whole seconds).
    fn expiry(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(0)
            + chrono::Duration::from_std(self.url_lifetime).unwrap_or_default()
    }

    /// A `PUT` of exactly `byte_size` bytes of `content_type` to `key`.
    pub fn presign_put(&self, key: &str, content_type: &str, byte_size: i64) -> Presigned {
        let expires_at = self.expiry();
        let length = byte_size.to_string();
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        action.headers_mut().insert("content-type", content_type);
        action
            .headers_mut()
            .insert("content-length", length.clone());
        let url = action.sign(self.url_lifetime).to_string();
        Presigned {
            url,
            headers: vec![
                ("Content-Type", content_type.to_owned()),
                ("Content-Length", length),
            ],
            expires_at,
        }
    }

    /// A `GET` of `key`; with `download_as`, browsers save it under that file name.
    pub fn presign_get(&self, key: &str, download_as: Option<&str>) -> Presigned {
        let expires_at = self.expiry();
        let mut action = self.bucket.get_object(Some(&self.credentials), key);
        if let Some(name) = download_as {
            let name: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() && c != '"' && c != '\\' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            action.query_mut().insert(
                "response-content-disposition",
                format!("attachment; filename=\"{name}\""),
            );
        }
        Presigned {
            url: action.sign(self.url_lifetime).to_string(),
            headers: Vec::new(),
            expires_at,
        }
    }

    /// The size and first bytes of `key`; `None` when there is no such object. One ranged
    /// `GET`, so a large object is never downloaded.
    pub async fn probe(&self, key: &str) -> Result<Option<Probe>, StorageError> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(Duration::from_secs(60));
        let mut response = self
            .http
            .get(url)
            .header(
                reqwest::header::RANGE,
                format!("bytes=0-{}", PROBE_BYTES - 1),
            )
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let size = match status.as_u16() {
            404 => return Ok(None),
            // A zero-byte object has no first byte to range over.
            416 => {
                return Ok(Some(Probe {
                    size: 0,
                    head: Vec::new(),
                }));
            }
            206 => response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit_once('/'))
                .and_then(|(_, total)| total.parse::<i64>().ok())
                .ok_or_else(|| StorageError("a ranged read without Content-Range".into()))?,
            200 => response
                .content_length()
                .and_then(|n| i64::try_from(n).ok())
                .ok_or_else(|| StorageError("a read without Content-Length".into()))?,
            _ => return Err(refused("reading an object", status, response).await),
        };
        let mut head = Vec::with_capacity(PROBE_BYTES);
        while head.len() < PROBE_BYTES {
            match response.chunk().await.map_err(unreachable)? {
                Some(chunk) => head.extend_from_slice(&chunk),
                None => break,
            }
        }
        head.truncate(PROBE_BYTES);
        Ok(Some(Probe { size, head }))
    }

    /// Copies object `from` to `to` inside the bucket (the store copies; no bytes pass through
    /// bff); `false` when there is no object `from`.
    pub async fn copy(&self, from: &str, to: &str) -> Result<bool, StorageError> {
        const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'/');
        let source = format!(
            "{}/{}",
            self.bucket.name(),
            percent_encoding::utf8_percent_encode(from, KEEP)
        );
        let mut action = self.bucket.put_object(Some(&self.credentials), to);
        action
            .headers_mut()
            .insert("x-amz-copy-source", source.clone());
        let url = action.sign(Duration::from_secs(60));
        let response = self
            .http
            .put(url)
            .header("x-amz-copy-source", source)
            .send()
            .await
            .map_err(unreachable)?;
        match response.status().as_u16() {
            // S3 may report a copy that failed midway in a 200's body.
            200 => match response.text().await {
                Ok(body) if !body.contains("<Error>") => Ok(true),
                Ok(body) => Err(StorageError(format!(
                    "copying an object failed: {}",
                    body.chars().take(300).collect::<String>()
                ))),
                Err(error) => Err(unreachable(error)),
            },
            404 => Ok(false),
            _ => Err(refused("copying an object", response.status(), response).await),
        }
    }

    /// Deletes `key` (a key that is already gone is fine).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), key)
            .sign(Duration::from_secs(60));
        let response = self.http.delete(url).send().await.map_err(unreachable)?;
        match response.status().as_u16() {
            200 | 204 | 404 => Ok(()),
            _ => Err(refused("deleting an object", response.status(), response).await),
        }
    }

    /// Writes `body` to `key` (the probe of `bff check`, the demo data).
    pub async fn put(
        &self,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), StorageError> {
        let signed = self.presign_put(key, content_type, body.len() as i64);
        let mut request = self.http.put(&signed.url);
        for (name, value) in &signed.headers {
            request = request.header(*name, value);
        }
        let response = request.body(body).send().await.map_err(unreachable)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(refused("writing an object", response.status(), response).await)
        }
    }

    /// `bff check`'s probe: writes a small object, reads it back and deletes it.
    pub async fn check(&self) -> Result<(), StorageError> {
        let key = format!("{}bff-check/{}", self.prefix, uuid::Uuid::new_v4());
        self.put(&key, "text/plain", b"bff check".to_vec()).await?;
        let read = self.probe(&key).await;
        let deleted = self.delete(&key).await;
        match read? {
            Some(probe) if probe.size == 9 => {}
            other => {
                return Err(StorageError(format!(
                    "the probe object read back wrong: {other:?}"
                )));
            }
        }
        deleted
    }
}

/// A user id as one key segment: ASCII letters, digits, `-` and `_` stay, the rest is
/// percent-encoded (Better Auth's ids are already plain).
fn key_segment(id: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_');
    percent_encoding::utf8_percent_encode(id, KEEP).to_string()
}

fn unreachable(error: reqwest::Error) -> StorageError {
    StorageError(format!("unreachable: {error}"))
}

async fn refused(
    doing: &str,
    status: reqwest::StatusCode,
    response: reqwest::Response,
) -> StorageError {
    let body = response.text().await.unwrap_or_default();
    let code = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or("", |(code, _)| code);
    StorageError(format!("{doing} answered {status} {code}"))
}

/// Photo storage as the server uses it: the store (when configured) and its limits.
#[derive(Clone, Debug)]
pub struct Photos {
    store: Option<Arc<Store>>,
    /// Limits and lifetimes.
    pub settings: StorageConfig,
}

impl Photos {
    /// The storage of `config`; without a bucket, uploads are off.
    pub fn new(config: &StorageConfig) -> Result<Photos, String> {
        let store = match &config.bucket {
            Some(bucket) => Some(Arc::new(Store::new(bucket, config.url_lifetime)?)),
            None => None,
        };
        Ok(Photos {
            store,
            settings: config.clone(),
        })
    }

    /// The store, when configured.
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::storage::{Storage as StorageConfig, parse_url};

    fn store(endpoint: Option<&str>) -> Store {
        let (name, prefix) = parse_url("s3://photos/app").unwrap();
        let config = BucketConfig {
            name,
            prefix,
            region: "eu-west-1".into(),
            endpoint: endpoint.map(str::to_owned),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".to_owned().into(),
            session_token: None,
        };
        Store::new(&config, StorageConfig::default().url_lifetime).unwrap()
    }

    #[test]
    fn keys_name_their_owner_and_urls_bind_type_and_length() {
        let store = store(Some("http://127.0.0.1:9000"));
        let key = store.upload_key("user/1 é");
        assert!(
            key.starts_with("app/users/user%2F1%20%C3%A9/uploads/"),
            "{key}"
        );
        let put = store.presign_put(&key, "image/png", 1234);
        assert!(
            put.url
                .starts_with("http://127.0.0.1:9000/photos/app/users/"),
            "{}",
            put.url
        );
        assert!(
            put.url
                .contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
            "{}",
            put.url
        );
        assert!(put.url.contains("X-Amz-Expires=600"), "{}", put.url);
        assert_eq!(
            put.headers,
            [
                ("Content-Type", "image/png".to_owned()),
                ("Content-Length", "1234".to_owned())
            ]
        );
        let aws = self::store(None);
        let get = aws.presign_get("k", Some("job \"1\".zip"));
        assert!(
            get.url
                .starts_with("https://photos.s3.eu-west-1.amazonaws.com/k?"),
            "{}",
            get.url
        );
        assert!(
            get.url
                .contains("attachment%3B%20filename%3D%22job__1_.zip%22"),
            "{}",
            get.url
        );
    }
}
