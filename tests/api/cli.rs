//! The `bff` binary: help and version, configuration errors at start-up, `migrate`, `check`,
//! `schema`, `dev`.

use std::process::Command;
use std::time::Duration;

/// The built `bff`, with an empty environment.
pub fn bff() -> Command {
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
    let status = signal_and_wait(child, "-INT").await;
    assert!(status.success(), "bff dev exited with {status}");
}

/// Runs `bff check` against `database_url` with a minimal configuration plus `extra`;
/// whether it passed, and what it printed.
pub fn check(database_url: &str, extra: &[(&str, &str)]) -> (bool, String) {
    let mut command = bff();
    command
        .arg("check")
        .env("DATABASE_URL", database_url)
        .env("BETTER_AUTH_SECRET", crate::support::SECRET)
        .env("BETTER_AUTH_URL", "http://localhost:5173");
    for (name, value) in extra {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn help_lists_every_command_and_every_variable_with_its_default() {
    let output = bff().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "serve",
        "migrate",
        "check",
        "schema",
        "dev",
        "service-token",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
    for variable in bff::config::variables() {
        assert!(help.contains(variable.name), "{} missing", variable.name);
        assert!(
            help.contains(&format!("[default: {}]", variable.default_text())),
            "{}'s default missing",
            variable.name
        );
    }
    let serve = bff().args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&serve.stdout).contains("DATABASE_STATEMENT_TIMEOUT_MS"));
    // The commit the binary was built from (this checkout's, when git can say).
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".to_owned(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_owned()
        });
    let version = bff().arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("bff {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_mistyped_command_or_flag_is_named() {
    let output = bff().arg("serv").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("serve"),
        "a suggestion"
    );
    let output = bff()
        .args(["service-token", "--ttl", "1y"])
        .env("SERVICE_JWT_SECRET", "x".repeat(32))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--ttl") && stderr.contains("30d"),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_passes_on_a_ready_database_and_warns_about_what_is_off() {
    let url = crate::support::fresh_database().await;
    let (ok, report) = check(&url, &[]);
    assert!(ok, "{report}");
    for line in [
        "ok    configuration",
        "ok    database",
        "warn  tls            off: the server offers no TLS (sslmode=prefer)",
        "ok    better auth",
        "ok    migrations     up to date",
        "warn  stripe         not configured",
        "warn  worker         SERVICE_JWT_SECRET unset",
        "bff check: ready",
    ] {
        assert!(report.contains(line), "{line:?} missing from:\n{report}");
    }
    let (ok, report) = check(
        &url,
        &[
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ("SERVICE_JWT_SECRET", &"s".repeat(32)),
        ],
    );
    assert!(
        ok && report.contains("ok    stripe") && report.contains("ok    worker"),
        "{report}"
    );
}

#[tokio::test]
async fn check_fails_and_says_what_to_do_when_the_database_is_not_ready() {
    let url = crate::support::empty_database().await;
    let (ok, report) = check(&url, &[]);
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAIL  better auth") && report.contains("migrate"),
        "{report}"
    );

    let mut conn = bff::db::connect(&url).await.unwrap();
    bff::db::create_better_auth_tables(&mut conn).await.unwrap();
    let (ok, report) = check(&url, &[]);
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAIL  migrations")
            && report.contains("pending")
            && report.contains("bff migrate"),
        "{report}"
    );

    // Each connection failure says PostgreSQL's or the OS's own reason.
    let missing = format!("{url}_missing");
    let (ok, report) = check(&missing, &[]);
    let name = missing.rsplit('/').next().unwrap();
    assert!(
        !ok && report.contains(&format!("database \"{name}\" does not exist")),
        "{report}"
    );
    let host = url.split('@').nth(1).unwrap();
    let (ok, report) = check(&format!("postgres://no_such_role_bff@{host}"), &[]);
    assert!(
        !ok && report.contains("role \"no_such_role_bff\" does not exist"),
        "{report}"
    );
    let (ok, report) = check("postgres://nobody@127.0.0.1:1/none", &[]);
    assert!(
        !ok && report.contains("FAIL  database") && report.contains("Connection refused"),
        "{report}"
    );
    let (ok, report) = check("postgres://nobody@no-such-host.invalid/none", &[]);
    assert!(
        !ok && report.contains("no-such-host.invalid") && report.contains("lookup"),
        "{report}"
    );
    let (ok, report) = check(&url, &[("DATABASE_POOL_SIZE", "0")]);
    assert!(
        !ok && report.contains("FAIL  configuration") && report.contains("DATABASE_POOL_SIZE"),
        "{report}"
    );
}

/// Starts `bff serve` on `database_url` and a free loopback port, with `env` added to the
/// test configuration; returns the child and its base URL once `/healthz` answers.
pub async fn serve_child(
    database_url: &str,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let port = crate::support::free_port();
    let mut command = bff();
    command
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("BETTER_AUTH_SECRET", crate::support::SECRET)
        .env("BETTER_AUTH_URL", "http://localhost:5173")
        .env("BFF_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("bff serve did not start");
}

/// Sends `signal` (`-INT`, `-TERM`) to `child` and waits for it to exit.
pub async fn signal_and_wait(
    mut child: std::process::Child,
    signal: &str,
) -> std::process::ExitStatus {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap()
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

/// Four `bff migrate` started at once on a fresh database (four replicas starting, a retried
/// Job): all succeed, one applies the migrations, the others wait for its lock and then find
/// nothing to do. Without the lock, PostgreSQL refuses the second `CREATE TYPE`
/// (`duplicate key … pg_type_typname_nsp_index`).
#[tokio::test]
async fn concurrent_migrates_take_turns_and_apply_each_migration_once() {
    let url = crate::support::empty_database().await;
    let mut conn = bff::db::connect(&url).await.unwrap();
    bff::db::create_better_auth_tables(&mut conn).await.unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            bff()
                .arg("migrate")
                .env("DATABASE_URL", &url)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    let mut applied = 0;
    for output in &outputs {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        if stdout.contains("applied") {
            applied += 1;
        } else {
            assert!(stdout.contains("up to date"), "{stdout}");
        }
    }
    assert_eq!(applied, 1, "exactly one run applies the migrations");
}

/// `bff serve` refuses a database a newer bff migrated, unless the newer migrations declared
/// themselves compatible (expand-only) in `bff_compatible_migrations`.
#[tokio::test]
async fn serve_refuses_unknown_migrations_unless_declared_compatible() {
    use diesel_async::SimpleAsyncConnection;
    let url = crate::support::fresh_database().await;
    let mut conn = bff::db::connect(&url).await.unwrap();
    conn.batch_execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20991231000001'), ('20991231000002')",
    )
    .await
    .unwrap();
    let serve = |url: &str| {
        bff()
            .arg("serve")
            .env("DATABASE_URL", url)
            .env("BETTER_AUTH_SECRET", crate::support::SECRET)
            .env("BETTER_AUTH_URL", "http://localhost:5173")
            .env("BFF_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap()
    };
    let refused = serve(&url);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("20991231000001, 20991231000002")
            && stderr.contains("not declared compatible"),
        "{stderr}"
    );
    // One declared compatible is not enough while the other is not.
    conn.batch_execute(
        "INSERT INTO bff_compatible_migrations (version, note) VALUES ('20991231000001', 'expand: a new table')",
    )
    .await
    .unwrap();
    let still = serve(&url);
    let stderr = String::from_utf8_lossy(&still.stderr);
    assert!(!still.status.success(), "{stderr}");
    assert!(
        stderr.contains("20991231000002") && !stderr.contains("20991231000001"),
        "{stderr}"
    );
    // `bff check` says the same, as a failure.
    let (ok, report) = check(&url, &[]);
    assert!(!ok, "{report}");
    assert!(
        report.contains("FAIL  migrations") && report.contains("20991231000002"),
        "{report}"
    );
    conn.batch_execute(
        "INSERT INTO bff_compatible_migrations (version, note) VALUES ('20991231000002', 'expand: a nullable column')",
    )
    .await
    .unwrap();
    let (mut child, base) = serve_child(&url, &[]).await;
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let _ = child.kill();
    let _ = child.wait();
}

/// Every migration this binary knows is applied by the test template, and the compatibility
/// table names the one that declared itself.
#[tokio::test]
async fn our_expand_only_migration_declares_itself_compatible() {
    let url = crate::support::fresh_database().await;
    let mut conn = bff::db::connect(&url).await.unwrap();
    let newer = bff::db::migrate::newer_migrations(&mut conn).await.unwrap();
    assert_eq!(newer, bff::db::migrate::Newer::default());
    assert!(bff::db::migrate::known_versions().contains(&"20261207000017".to_owned()));
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
