//! Abusive connections: an exhausted pool, oversized and unfinished requests, shutdown.

use super::*;

#[tokio::test]
async fn readyz_answers_quickly_when_the_pool_is_exhausted() {
    let app = TestApp::spawn_with(|env| {
        env.insert("DATABASE_POOL_SIZE", "1".into());
        env.insert("DATABASE_POOL_TIMEOUT_MS", "30000".into());
    })
    .await;
    let held = app.pool.get().await.unwrap();
    let started = Instant::now();
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"], "busy", "{body}");
    // The pool would have made it wait 30 s.
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    drop(held);
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// Writes `request` on a raw connection and returns what the server answers before closing or
/// `within` passes (`None` for nothing at all).
fn raw_exchange(app: &TestApp, request: &[u8], within: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(app.addr).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => return (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into()),
        }
    }
    Some(String::from_utf8_lossy(&answer).into())
}

#[tokio::test]
async fn an_oversized_content_length_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let request = b"POST /graphql HTTP/1.1\r\nHost: bff\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{\"query\":";
    let answer =
        tokio::task::spawn_blocking(move || raw_exchange(&app, request, Duration::from_secs(5)))
            .await
            .unwrap()
            .expect("an answer within 5 s, not after the body");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BFF_HEADER_READ_TIMEOUT_MS", "500".into());
    })
    .await;
    let started = Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(app.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"POST /graphql HTTP/1.1\r\nHost: bff\r\n")
            .unwrap();
        let mut buffer = [0u8; 1024];
        // 1 byte a second would keep an untimed connection open forever.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(300));
            if stream.write_all(b"X").is_err() {
                break;
            }
        }
        stream.read(&mut buffer)
    })
    .await
    .unwrap();
    assert!(
        matches!(answer, Ok(0)) || matches!(answer, Ok(n) if n > 0) || answer.is_err(),
        "{answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the connection stayed open for {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_half_sent_request_does_not_block_graceful_shutdown() {
    let app = TestApp::spawn().await;
    let (child, base) = crate::cli::serve_child(
        &app.database_url,
        &[
            ("BFF_HEADER_READ_TIMEOUT_MS", "60000"),
            ("BFF_SHUTDOWN_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    let addr = base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: bff\r\nContent-")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = tokio::time::timeout(
        Duration::from_secs(15),
        crate::cli::signal_and_wait(child, "-TERM"),
    )
    .await
    .expect("bff serve exits after SIGTERM despite a half-sent request");
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(stream);
}
