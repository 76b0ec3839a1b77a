//! An S3-compatible store on a loopback port, for `bff dev` and the tests: `s3s-fs` keeps the
//! objects as files under a directory (one directory per bucket) and `s3s` checks every
//! request's SigV4 signature — presigned URLs, their signed headers and their expiry included —
//! as a real store does. Browsers upload to it directly, so it answers CORS preflights for any
//! origin (development only).

use std::net::SocketAddr;
use std::path::Path;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use s3s::Body;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use crate::config::dev::{
    STORAGE_ACCESS_KEY as ACCESS_KEY, STORAGE_BUCKET as BUCKET, STORAGE_SECRET_KEY as SECRET_KEY,
};

/// A running embedded store; stopped when dropped.
#[derive(Debug)]
pub struct EmbeddedStore {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EmbeddedStore {
    /// Serves the directory `root` (created if needed, with a directory for `bucket`) on
    /// `addr` (port 0 picks one).
    pub async fn start(root: &Path, bucket: &str, addr: SocketAddr) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join(bucket))?;
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept(listener, service, root.to_owned()));
        Ok(EmbeddedStore { addr, task })
    }

    /// `http://127.0.0.1:PORT`: the endpoint (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (connections in progress are cut).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, service: S3Service, root: std::path::PathBuf) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let service = service.clone();
        let root = root.clone();
        connections.spawn(async move {
            let handler =
                service_fn(move |request| respond(service.clone(), request, root.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), handler)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// CORS around the store: preflights are answered here, other responses get the headers.
async fn respond(
    service: S3Service,
    request: hyper::Request<Incoming>,
    root: std::path::PathBuf,
) -> Result<hyper::Response<Body>, s3s::HttpError> {
    use hyper::header::{self, HeaderValue};
    let origin = request.headers().get(header::ORIGIN).cloned();
    let deleted =
        (request.method() == hyper::Method::DELETE).then(|| request.uri().path().to_owned());
    let mut response = if request.method() == hyper::Method::OPTIONS {
        let mut response = hyper::Response::new(Body::empty());
        *response.status_mut() = hyper::StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, PUT, HEAD"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    } else {
        hyper::service::Service::call(&service, request).await?
    };
    if let Some(path) = deleted
        && response.status().is_success()
    {
        forget_metadata(&root, &path);
    }
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("etag"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    Ok(response)
}

/// Removes what s3s-fs 0.14 keeps beside an object after deleting it: its `.metadata.json` and
/// `.internal.json` files, which name the key (and so whose object it was).
fn forget_metadata(root: &Path, path: &str) {
    use base64::Engine;
    let path =
        percent_encoding::percent_decode_str(path.trim_start_matches('/')).decode_utf8_lossy();
    let Some((bucket, key)) = path.split_once('/') else {
        return;
    };
    let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    for suffix in ["metadata.json", "internal.json"] {
        let file = format!(".bucket-{}.object-{}.{suffix}", encode(bucket), encode(key));
        let _ = std::fs::remove_file(root.join(file));
    }
}
