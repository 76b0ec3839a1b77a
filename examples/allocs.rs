//! Heap allocations per request: bff's router (every layer from request id to the serialised
//! answer, without the TCP connection) driven in process through `tower::ServiceExt::oneshot`,
//! under a counting wrapper around the same allocator `bff serve` uses (mimalloc).
//!
//! Configuration as for `bff serve` (DATABASE_URL, BETTER_AUTH_SECRET, ...). Arguments: the
//! GraphQL query; standard input: one `Cookie` header value per line, rotated over the requests.
//! Prints `allocations/request` and `bytes/request` (bytes asked for, not live memory), averaged
//! over `ALLOCS_REQUESTS` (2000) requests after as many for warm-up; the database's work
//! (connection task, decoding) is inside the count, as it is inside the server.
//!
//! `scripts/bench` runs it on its dataset; alone:
//! `echo 'better-auth.session_token=…' | cargo run --release --example allocs -- '{ viewer { id } }'`.

// A global allocator cannot be written without `unsafe`; the server itself forbids it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::body::Body;
use axum::http::{Request, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes asked for, by power-of-two size class (`ALLOCS_SIZES=1` prints them).
static SIZES: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];

fn count(size: usize) {
    ALLOCATIONS.fetch_add(1, Relaxed);
    BYTES.fetch_add(size as u64, Relaxed);
    SIZES[(usize::BITS - size.leading_zeros()).min(31) as usize].fetch_add(size as u64, Relaxed);
}

// SAFETY: forwards every call to mimalloc unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let query = std::env::args()
        .nth(1)
        .ok_or("usage: allocs QUERY < cookies")?;
    let cookies: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect();
    if cookies.is_empty() {
        return Err("no cookies on standard input".into());
    }
    let requests: u64 = std::env::var("ALLOCS_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let body = serde_json::to_vec(&serde_json::json!({ "query": query }))?;

    // One thread, as one request sees it; the pool's connection tasks run on it too.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = bff::config::Config::from_env()?;
        let pool = bff::db::pool_from_config(&config.database)?;
        let app = bff::app::App::new(&config, pool)?;
        app.start();
        let app = bff::http::router(&app);
        let send = |i: u64| {
            let request = Request::post("/graphql")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::COOKIE, &cookies[i as usize % cookies.len()])
                .body(Body::from(body.clone()))
                .expect("a valid request");
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await.expect("infallible");
                let status = response.status();
                let bytes = response.into_body().collect().await?.to_bytes();
                if !status.is_success() || bytes.windows(9).any(|w| w == b"\"errors\":") {
                    return Err(format!(
                        "request {i}: {status} {}",
                        String::from_utf8_lossy(&bytes)
                    )
                    .into());
                }
                Ok::<_, Box<dyn std::error::Error>>(())
            }
        };
        for i in 0..requests {
            send(i).await?;
        }
        let (allocations, bytes) = (ALLOCATIONS.load(Relaxed), BYTES.load(Relaxed));
        let sizes: Vec<u64> = SIZES.iter().map(|s| s.load(Relaxed)).collect();
        for i in 0..requests {
            send(i).await?;
        }
        let allocations = ALLOCATIONS.load(Relaxed) - allocations;
        let bytes = BYTES.load(Relaxed) - bytes;
        println!(
            "allocations/request {:.1}  bytes/request {:.0}  ({requests} requests)",
            allocations as f64 / requests as f64,
            bytes as f64 / requests as f64
        );
        if std::env::var_os("ALLOCS_SIZES").is_some() {
            for (class, before) in sizes.iter().enumerate() {
                let bytes = SIZES[class].load(Relaxed) - before;
                if bytes > 0 {
                    println!(
                        "  sizes up to {:>9} B: {:.0} bytes/request",
                        1u64 << class,
                        bytes as f64 / requests as f64
                    );
                }
            }
        }
        Ok(())
    })
}
