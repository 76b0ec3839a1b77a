//! Object storage for photos (S3 API): `BFF_STORAGE_URL`, the standard `AWS_*` variables, and
//! the limits and lifetimes of uploads and presigned URLs.

use std::time::Duration;

use secrecy::SecretString;

use super::env::{Env, Variable, is_http_url};

/// `BFF_STORAGE_URL`.
pub const URL: Variable = Variable::optional(
    "BFF_STORAGE_URL",
    "the bucket photos live in, as s3://BUCKET[/PREFIX]",
    "uploads are off: photo operations answer SERVICE_UNAVAILABLE, jobs take a photoCount",
);
/// `AWS_ACCESS_KEY_ID`.
pub const ACCESS_KEY_ID: Variable = Variable::optional(
    "AWS_ACCESS_KEY_ID",
    "access key of the bucket's credentials (required with BFF_STORAGE_URL)",
    "no storage",
);
/// `AWS_SECRET_ACCESS_KEY`.
pub const SECRET_ACCESS_KEY: Variable = Variable::optional(
    "AWS_SECRET_ACCESS_KEY",
    "secret key of the bucket's credentials (required with BFF_STORAGE_URL)",
    "no storage",
);
/// `AWS_SESSION_TOKEN`.
pub const SESSION_TOKEN: Variable = Variable::optional(
    "AWS_SESSION_TOKEN",
    "session token of temporary credentials",
    "long-term credentials",
);
/// `AWS_REGION`.
pub const REGION: Variable =
    Variable::value("AWS_REGION", "the bucket's region (R2: auto)", "us-east-1");
/// `AWS_ENDPOINT_URL`.
pub const ENDPOINT_URL: Variable = Variable::optional(
    "AWS_ENDPOINT_URL",
    "an S3-compatible endpoint (R2, MinIO, B2, GCS); implies path-style URLs; http:// is accepted for local servers",
    "AWS S3, virtual-hosted-style",
);
/// `BFF_UPLOAD_MAX_BYTES`.
pub const UPLOAD_MAX_BYTES: Variable = Variable::number(
    "BFF_UPLOAD_MAX_BYTES",
    "largest photo one upload may hold, in bytes",
    26_214_400,
    1_024,
    1_073_741_824,
);
/// `BFF_RESULT_MAX_BYTES`.
pub const RESULT_MAX_BYTES: Variable = Variable::number(
    "BFF_RESULT_MAX_BYTES",
    "largest result (the ZIP a worker uploads) of one job, in bytes",
    1_073_741_824,
    1_024,
    2_147_483_647,
);
/// `BFF_PRESIGNED_URL_SECONDS`.
pub const PRESIGNED_URL_SECONDS: Variable = Variable::number(
    "BFF_PRESIGNED_URL_SECONDS",
    "how long a presigned upload or download URL works, in seconds",
    600,
    30,
    3_600,
);
/// `BFF_UPLOAD_UNATTACHED_HOURS`.
pub const UNATTACHED_HOURS: Variable = Variable::number(
    "BFF_UPLOAD_UNATTACHED_HOURS",
    "how long an upload waits for a job before it and its object are deleted, in hours",
    24,
    1,
    720,
);
/// `BFF_UPLOAD_MAX_PENDING`.
pub const MAX_PENDING: Variable = Variable::number(
    "BFF_UPLOAD_MAX_PENDING",
    "uploads one person may have waiting for a job (their declared bytes count toward the plan's storage meanwhile)",
    200,
    1,
    100_000,
);

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[
    URL,
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    SESSION_TOKEN,
    REGION,
    ENDPOINT_URL,
    UPLOAD_MAX_BYTES,
    RESULT_MAX_BYTES,
    PRESIGNED_URL_SECONDS,
    UNATTACHED_HOURS,
    MAX_PENDING,
];

/// Where photos live and with which credentials.
#[derive(Clone, Debug)]
pub struct Bucket {
    /// The bucket's name.
    pub name: String,
    /// The key prefix every object gets (empty, or ending in `/`).
    pub prefix: String,
    /// The region.
    pub region: String,
    /// A custom endpoint (path-style URLs); `None` is AWS S3 (virtual-hosted-style).
    pub endpoint: Option<String>,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: SecretString,
    /// Session token of temporary credentials.
    pub session_token: Option<SecretString>,
}

/// Photo storage: the bucket (if any) and the limits of uploads.
#[derive(Clone, Debug)]
pub struct Storage {
    /// The bucket; `None` turns uploads off.
    pub bucket: Option<Bucket>,
    /// Largest photo, in bytes.
    pub upload_max_bytes: i64,
    /// Largest job result, in bytes.
    pub result_max_bytes: i64,
    /// Lifetime of presigned URLs.
    pub url_lifetime: Duration,
    /// How long an upload waits for a job.
    pub unattached_lifetime: Duration,
    /// Uploads one person may have waiting for a job.
    pub max_pending: i64,
}

impl Default for Storage {
    fn default() -> Self {
        Storage::read(&mut Env::empty())
    }
}

/// `s3://BUCKET[/PREFIX]` → (bucket, prefix ending in `/` or empty).
pub fn parse_url(value: &str) -> Result<(String, String), String> {
    let rest = value
        .strip_prefix("s3://")
        .ok_or("expected s3://BUCKET[/PREFIX]")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !valid_bucket {
        return Err(format!(
            "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.contains("//") || prefix.len() > 200 {
        return Err("the prefix must be a path without empty segments, at most 200 bytes".into());
    }
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Ok((bucket.to_owned(), prefix))
}

impl Storage {
    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        let location = env.parse(&URL, parse_url);
        let access_key_id = env.text(&ACCESS_KEY_ID);
        let secret_access_key = env.text(&SECRET_ACCESS_KEY);
        let session_token = env.text(&SESSION_TOKEN).map(SecretString::from);
        let region = env.text(&REGION).unwrap_or_default();
        let endpoint = env.parse(&ENDPOINT_URL, |value| {
            if is_http_url(value) {
                Ok(value.trim_end_matches('/').to_owned())
            } else {
                Err("expected an http:// or https:// URL".into())
            }
        });
        let bucket = match (location, access_key_id, secret_access_key) {
            (Some((name, prefix)), Some(access_key_id), Some(secret)) => Some(Bucket {
                name,
                prefix,
                region,
                endpoint,
                access_key_id,
                secret_access_key: SecretString::from(secret),
                session_token,
            }),
            (Some(_), key, secret) => {
                if key.is_none() {
                    env.fail(&ACCESS_KEY_ID, "required with BFF_STORAGE_URL");
                }
                if secret.is_none() {
                    env.fail(&SECRET_ACCESS_KEY, "required with BFF_STORAGE_URL");
                }
                None
            }
            (None, ..) => None,
        };
        Storage {
            bucket,
            upload_max_bytes: env.number(&UPLOAD_MAX_BYTES) as i64,
            result_max_bytes: env.number(&RESULT_MAX_BYTES) as i64,
            url_lifetime: Duration::from_secs(env.number(&PRESIGNED_URL_SECONDS)),
            unattached_lifetime: Duration::from_secs(env.number(&UNATTACHED_HOURS) * 3600),
            max_pending: env.number(&MAX_PENDING) as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls() {
        assert_eq!(
            parse_url("s3://photos").unwrap(),
            ("photos".into(), "".into())
        );
        assert_eq!(
            parse_url("s3://my-bucket/app/prod/").unwrap(),
            ("my-bucket".into(), "app/prod/".into())
        );
        assert!(parse_url("https://photos").is_err());
        assert!(parse_url("s3://Photos").is_err());
        assert!(parse_url("s3://ab").is_err());
        assert!(parse_url("s3://photos/a//b").is_err());
    }

    #[test]
    fn credentials_are_required_with_a_bucket() {
        let mut env = Env::new(|name| (name == "BFF_STORAGE_URL").then(|| "s3://photos".into()));
        let storage = Storage::read(&mut env);
        assert!(storage.bucket.is_none());
        let errors = env.finish(()).unwrap_err();
        let names: Vec<_> = errors.0.iter().map(|e| e.variable()).collect();
        assert_eq!(names, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
        let mut env = Env::empty();
        assert!(Storage::read(&mut env).bucket.is_none());
        assert!(env.finish(()).is_ok());
    }
}
