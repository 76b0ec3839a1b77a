//! `bff dev`: the demo, Ctrl-C, and an interrupted start.

use super::*;

#[tokio::test]
async fn dev_seeds_the_demo_user_prints_working_credentials_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let url = crate::support::empty_database().await;
    // Its own working directory: bff dev catches email under ./.bff/mail.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "dev-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = bff()
        .current_dir(&dir)
        .arg("dev")
        .env("DATABASE_URL", &url)
        .env("BFF_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (addr, cookie, graphiql) = tokio::task::spawn_blocking(move || {
        let (mut addr, mut cookie, mut graphiql) = (String::new(), String::new(), String::new());
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.split("serving http://").nth(1) {
                addr = rest.split('/').next().unwrap().to_owned();
            }
            if let Some(value) = line.trim().strip_prefix("Cookie: ") {
                cookie = value.to_owned();
            }
            if line.contains("/graphiql#headers=") {
                graphiql = line.trim().to_owned();
            }
            if line.contains("Ctrl-C stops") {
                break;
            }
        }
        (addr, cookie, graphiql)
    })
    .await
    .unwrap();
    assert!(
        !addr.is_empty() && cookie.starts_with("better-auth.session_token="),
        "{addr} {cookie}"
    );
    let client = reqwest::Client::new();
    let query = async |query: &str| -> serde_json::Value {
        let request = client
            .post(format!("http://{addr}/graphql"))
            .header("cookie", &cookie)
            .json(&serde_json::json!({ "query": query }));
        request.send().await.unwrap().json().await.unwrap()
    };
    let body = query(
        "{ viewer { email photoJobs { totalCount } credits { transactions { totalCount } } } }",
    )
    .await;
    let viewer = &body["data"]["viewer"];
    assert_eq!(viewer["email"], bff::dev::seed::DEMO_EMAIL, "{body}");
    assert_eq!(viewer["photoJobs"]["totalCount"], 30);
    assert!(
        viewer["credits"]["transactions"]["totalCount"]
            .as_i64()
            .unwrap()
            > 2
    );
    // Its newest job has photos and a result in the embedded store, served to the demo user.
    let body = query(
        "{ viewer { photoJobs(first: 1) { nodes { status downloadUrl photos { url contentType } } } } }",
    )
    .await;
    let job = &body["data"]["viewer"]["photoJobs"]["nodes"][0];
    assert_eq!(job["status"], "COMPLETED", "{body}");
    let photo = client
        .get(job["photos"][0]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(photo.status(), 200);
    assert_eq!(
        photo.headers()["content-type"],
        job["photos"][0]["contentType"].as_str().unwrap()
    );
    let result = client
        .get(job["downloadUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(result.status(), 200);
    assert!(
        result.bytes().await.unwrap().starts_with(b"PK\x03\x04"),
        "a ZIP"
    );
    let page = client
        .get(graphiql.replace("#", "?x="))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "GraphiQL is served in development");
    // The demo user has notifications; the email of the unread ones is caught, not sent.
    let body = query("{ viewer { unreadNotificationCount notifications { totalCount nodes { kind readAt subject { __typename } } } } }").await;
    let viewer = &body["data"]["viewer"];
    assert_eq!(viewer["notifications"]["totalCount"], 3, "{body}");
    assert_eq!(viewer["unreadNotificationCount"], 2, "{body}");
    assert_eq!(
        viewer["notifications"]["nodes"][0]["subject"]["__typename"],
        "PhotoJob"
    );
    let mut index = String::new();
    for _ in 0..100 {
        index = client
            .get(format!("http://{addr}/dev/mail"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if index.contains(".eml") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(index.contains(bff::dev::seed::DEMO_EMAIL), "{index}");
    let emls: Vec<_> = std::fs::read_dir(dir.join(".bff/mail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(emls.len(), 1, "the two unread jobs in one email: {emls:?}");
    let eml = std::fs::read_to_string(&emls[0]).unwrap();
    assert!(
        eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{eml}"
    );
    let key = emls[0].file_stem().unwrap().to_str().unwrap();
    let html = client
        .get(format!("http://{addr}/dev/mail/{key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    assert!(
        html.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert!(html.text().await.unwrap().contains("<html"));
    let escape = client
        .get(format!("http://{addr}/dev/mail/..%2F..%2Fetc%2Fpasswd.eml"))
        .send()
        .await
        .unwrap();
    assert_eq!(escape.status(), 404);
    let status = signal_and_wait(child, "-INT").await;
    assert!(status.success(), "bff dev exited with {status}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A SIGINT sent to `bff dev` alone (as supervisors and IDEs send it), while its private
/// PostgreSQL is still starting, stops `bff dev` and the cluster it started: nothing keeps
/// running.
#[tokio::test]
async fn dev_interrupted_while_postgresql_starts_stops_and_leaves_no_cluster() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dev-interrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let child = bff()
        .arg("dev")
        .current_dir(&dir)
        .env("BFF_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // initdb alone takes seconds: half a second in, PostgreSQL is still being set up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let output = {
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        tokio::time::timeout(
            Duration::from_secs(120),
            tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
        )
        .await
        .expect("bff dev did not stop after SIGINT")
        .unwrap()
    };
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{}: {printed}", output.status);
    assert!(
        printed.contains("Stopped the private PostgreSQL"),
        "{printed}"
    );
    let running = Command::new("pgrep")
        .args(["-f", &format!("dev-interrupt-{}", std::process::id())])
        .output()
        .unwrap();
    assert!(
        running.stdout.is_empty(),
        "a PostgreSQL of this test still runs: {}",
        String::from_utf8_lossy(&running.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
