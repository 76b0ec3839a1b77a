//! `bff serve`: configuration refused, and draining on SIGTERM.

use super::*;

#[test]
fn serve_refuses_to_start_without_configuration_and_names_the_variable() {
    let output = bff().arg("serve").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    let output = bff()
        .arg("serve")
        .env("DATABASE_URL", "postgres://localhost/x")
        .env(
            "BETTER_AUTH_SECRET",
            "s3cret-value-that-must-not-be-printed",
        )
        .env("BETTER_AUTH_URL", "http://localhost:5173")
        .env("DATABASE_POOL_SIZE", "lots")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_POOL_SIZE"), "{stderr}");
    assert!(!stderr.contains("s3cret-value"), "{stderr}");
}

/// With `BFF_SHUTDOWN_DELAY_MS`, SIGTERM first drains: `/readyz` answers 503 `draining` and
/// every response closes its connection while requests are still served; then the listener
/// closes and the process exits.
#[tokio::test]
async fn sigterm_drains_before_it_stops_accepting() {
    let url = crate::support::fresh_database().await;
    let (child, base) = serve_child(&url, &[("BFF_SHUTDOWN_DELAY_MS", "1500")]).await;
    let client = reqwest::Client::new();
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().get("connection").is_none());
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let draining = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(draining.status(), 503);
    assert_eq!(draining.headers()["connection"], "close");
    let body: serde_json::Value = draining.json().await.unwrap();
    assert_eq!(body["status"], "draining");
    // Still serving GraphQL meanwhile.
    let answer = client
        .post(format!("{base}/graphql"))
        .json(&serde_json::json!({ "query": "{ viewer { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["connection"], "close");
    let exit = tokio::time::timeout(Duration::from_secs(10), signal_and_wait(child, "-0")).await;
    assert!(exit.is_ok(), "bff serve did not exit after the drain");
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "still accepting after the drain"
    );
}
