//! The `bff` binary: configuration errors at start-up, `migrate`, `schema`.

use std::process::Command;

fn bff() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bff"));
    // A developer's .env must not leak into these runs.
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(env!("CARGO_TARGET_TMPDIR"));
    command
}

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

#[test]
fn schema_prints_the_sdl() {
    let output = bff().arg("schema").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        bff::graphql::sdl()
    );
}

#[tokio::test]
async fn migrate_requires_better_auths_tables_then_applies_ours_once() {
    let url = crate::support::empty_database().await;
    let output = bff()
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Better Auth") && stderr.contains("migrate"),
        "{stderr}"
    );

    let mut conn = bff::db::connect(&url).await.unwrap();
    bff::db::create_better_auth_tables(&mut conn).await.unwrap();
    let output = bff()
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("applied"));
    let again = bff()
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("up to date"));
}

#[tokio::test]
async fn dev_seeds_the_demo_user_prints_working_credentials_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let url = crate::support::empty_database().await;
    let mut child = bff()
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
    let body: serde_json::Value = client
        .post(format!("http://{addr}/graphql"))
        .header("cookie", &cookie)
        .json(&serde_json::json!({ "query": "{ viewer { email photoJobs { totalCount } credits { transactions { totalCount } } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let viewer = &body["data"]["viewer"];
    assert_eq!(viewer["email"], bff::dev::seed::DEMO_EMAIL, "{body}");
    assert_eq!(viewer["photoJobs"]["totalCount"], 30);
    assert!(
        viewer["credits"]["transactions"]["totalCount"]
            .as_i64()
            .unwrap()
            > 2
    );
    let page = client
        .get(graphiql.replace("#", "?x="))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "GraphiQL is served in development");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "bff dev exited with {status}");
}
