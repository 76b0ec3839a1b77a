//! `bff dev`'s S3-compatible store (s3s-fs, which checks SigV4 signatures) on its own, for
//! trying storage outages by hand: stop it, watch bff retry, start it again.
//!
//! ```console
//! $ cargo run --example s3_store -- 127.0.0.1:9100 /tmp/bff-store
//! $ BFF_STORAGE_URL=s3://bff-dev AWS_ENDPOINT_URL=http://127.0.0.1:9100 \
//!   AWS_ACCESS_KEY_ID=bff-dev AWS_SECRET_ACCESS_KEY=bff-dev-storage-secret bff serve
//! ```

#![forbid(unsafe_code)]

use std::path::PathBuf;

use bff::storage::embedded::{BUCKET, EmbeddedStore};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9100".into());
    let root = PathBuf::from(args.next().unwrap_or_else(|| "/tmp/bff-store".into()));
    let store = EmbeddedStore::start(
        &root,
        BUCKET,
        addr.parse().expect("an address like 127.0.0.1:9100"),
    )
    .await
    .expect("the store starts");
    println!(
        "S3-compatible store at {} (bucket {BUCKET}, files under {})",
        store.endpoint(),
        root.display()
    );
    std::future::pending::<()>().await;
}
