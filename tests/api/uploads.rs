//! Photos in and out, against a real S3 implementation that checks signatures: `s3s-fs`
//! (the store `bff dev` embeds) on a loopback port, one per test, under `target/tmp`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bff::storage::embedded::{self, EmbeddedStore};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::photo_jobs::{grant, invariant_violations, state};
use crate::support::{TestApp, TestUser, eventually, first_code};
use crate::worker::{KEY, as_worker};

mod attach;
mod copies;
mod limits;
mod presign;
mod sweeper;

const JPEG: &[u8] = include_bytes!("../../src/dev/demo/sunrise.jpg");
const PNG: &[u8] = include_bytes!("../../src/dev/demo/sea.png");
const ZIP: &[u8] = include_bytes!("../../src/dev/demo/result.zip");

const UPLOADS: &str = "mutation($files: [PhotoFileInput!]!) { createPhotoUploads(input: { files: $files }) { uploads { id fileName contentType byteSize url headers { name value } expiresAt } } }";
const CREATE: &str = "mutation($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) { photoJob { id photoCount cost photos { id fileName contentType byteSize url } } credits { balance } } }";
const JOB: &str = "query($id: ID!) { viewer { photoJob(id: $id) { id status downloadUrl photos { fileName url } } } }";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A store for one test: a directory of its own, and a port it keeps across restarts.
pub struct Store {
    pub root: PathBuf,
    pub addr: SocketAddr,
    pub running: Option<EmbeddedStore>,
}

impl Store {
    pub async fn start() -> Store {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "bff-test-storage/{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let store = EmbeddedStore::start(&root, embedded::BUCKET, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Store {
            root,
            addr: store.addr(),
            running: Some(store),
        }
    }

    pub fn stop(&mut self) {
        if let Some(store) = self.running.take() {
            store.stop();
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        for _ in 0..50 {
            match EmbeddedStore::start(&self.root, embedded::BUCKET, self.addr).await {
                Ok(store) => {
                    self.running = Some(store);
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("the store could not listen on {} again", self.addr);
    }

    /// The variables that point bff at this store.
    pub fn env(&self, env: &mut std::collections::HashMap<&'static str, String>) {
        env.insert("BFF_STORAGE_URL", format!("s3://{}/app", embedded::BUCKET));
        env.insert("AWS_ACCESS_KEY_ID", embedded::ACCESS_KEY.into());
        env.insert("AWS_SECRET_ACCESS_KEY", embedded::SECRET_KEY.into());
        env.insert("AWS_ENDPOINT_URL", format!("http://{}", self.addr));
    }

    /// [`Store::env`], a worker key and no free photos: what these tests run with.
    pub fn test_env(&self, env: &mut std::collections::HashMap<&'static str, String>) {
        self.env(env);
        env.insert("SERVICE_JWT_SECRET", KEY.into());
        env.insert("FREE_PHOTO_ALLOWANCE", "0".into());
    }

    /// The keys the store keeps metadata files for (s3s-fs writes two beside each object).
    pub fn metadata_keys(&self) -> Vec<String> {
        use base64::Engine;
        let mut keys: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let object = name.strip_prefix(".bucket-")?.split(".object-").nth(1)?;
                let encoded = object.split('.').next()?;
                let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(encoded)
                    .ok()?;
                String::from_utf8(key).ok()
            })
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// How many checked copies of photos (`users/<id>/photos/…`) the store holds.
    pub fn copies(&self) -> usize {
        self.objects()
            .into_iter()
            .filter(|k| k.contains("/photos/"))
            .count()
    }

    /// The files the store holds (relative paths), its own metadata aside.
    pub fn objects(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    let rel = path
                        .strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    if !rel.contains(".s3s") && !rel.starts_with('.') {
                        out.push(rel);
                    }
                }
            }
        }
        let mut out = Vec::new();
        let bucket = self.root.join(embedded::BUCKET);
        walk(&bucket, &bucket, &mut out);
        out
    }
}

pub async fn app_with_store() -> (TestApp, Store) {
    let store = Store::start().await;
    let app = TestApp::spawn_with(|env| store.test_env(env)).await;
    (app, store)
}

/// Creates a job of `ids` for `user`; the response.
async fn create_job(app: &TestApp, user: &TestUser, ids: &[String]) -> Value {
    let input = json!({ "input": { "prompt": "p", "uploadIds": ids } });
    app.query_as(user, CREATE, input).await
}

fn file(name: &str, content_type: &str, bytes: &[u8]) -> Value {
    json!({ "fileName": name, "contentType": content_type, "byteSize": bytes.len() })
}

/// Asks for uploads of `files`; returns the uploads.
pub async fn uploads(app: &TestApp, user: &TestUser, files: Vec<Value>) -> Vec<Value> {
    let body = app.query_as(user, UPLOADS, json!({ "files": files })).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["createPhotoUploads"]["uploads"]
        .as_array()
        .unwrap()
        .clone()
}

/// PUTs `body` to an upload's URL with its headers; the status.
pub async fn put(upload: &Value, body: &[u8]) -> u16 {
    let mut request = reqwest::Client::new().put(upload["url"].as_str().unwrap());
    for header in upload["headers"].as_array().unwrap() {
        let name = header["name"].as_str().unwrap();
        if !name.eq_ignore_ascii_case("content-length") {
            request = request.header(name, header["value"].as_str().unwrap());
        }
    }
    request
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn get(url: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// Uploads `photos` for `user` and returns their ids.
pub async fn uploaded(
    app: &TestApp,
    user: &TestUser,
    photos: &[(&str, &str, &[u8])],
) -> Vec<String> {
    let files = photos.iter().map(|(n, t, b)| file(n, t, b)).collect();
    let uploads = uploads(app, user, files).await;
    let mut ids = Vec::new();
    for (upload, (_, _, bytes)) in uploads.iter().zip(photos) {
        assert_eq!(put(upload, bytes).await, 200);
        ids.push(upload["id"].as_str().unwrap().to_owned());
    }
    ids
}

fn row(global: &str) -> i64 {
    use base64::Engine;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(global)
        .unwrap();
    String::from_utf8(text)
        .unwrap()
        .split_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap()
}

async fn upload_rows(app: &TestApp) -> i64 {
    use bff::db::schema::photo_uploads;
    photo_uploads::table
        .count()
        .get_result(&mut app.db().await)
        .await
        .unwrap()
}

/// Makes every queued deletion due now (as if the upload URLs had expired).
pub async fn deletions_due(app: &TestApp) -> i64 {
    use bff::db::schema::storage_deletions;
    let mut conn = app.db().await;
    diesel::update(storage_deletions::table)
        .set(storage_deletions::not_before.eq(diesel::dsl::now))
        .execute(&mut conn)
        .await
        .unwrap() as i64
}

/// A `bff serve` process on `database_url` using `store`.
async fn serve_process(database_url: &str, store: &Store) -> (std::process::Child, TestApp) {
    let mut env = std::collections::HashMap::new();
    store.test_env(&mut env);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (child, base) = crate::cli::serve_child(database_url, &env).await;
    let addr = base.trim_start_matches("http://").parse().unwrap();
    (child, TestApp::attach(database_url.to_owned(), addr))
}

/// `bff check` as a process, while this test's runtime keeps serving the store.
async fn check(database_url: &str, extra: Vec<(&'static str, String)>) -> (bool, String) {
    let database_url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::cli::check(&database_url, &extra)
    })
    .await
    .unwrap()
}
