//! Runs the Node suite in `tests/interop/` against the real `better-auth` package (pinned by
//! its lockfile): Better Auth migrates its own tables, signs up, signs in, signs out, and bff
//! must agree at every step. Installs the node modules with `npm ci` when they are missing.

use crate::support::{Tool, requires};
use std::path::Path;
use std::process::Command;

/// `tests/interop`, its pinned node modules installed (once, whichever test comes first).
fn interop_dir() -> std::path::PathBuf {
    static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    let present = [
        "better-auth",
        "graphql-ws",
        "subscriptions-transport-ws",
        "ws",
    ]
    .iter()
    .all(|m| dir.join("node_modules").join(m).is_dir());
    if !*installed && !present {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the interop suite (install Node.js 20+)");
        assert!(status.success(), "npm ci failed in tests/interop");
    }
    *installed = true;
    dir
}

#[tokio::test]
async fn bff_interoperates_with_real_better_auth() {
    if !requires(&[Tool::Node]) {
        return;
    }
    let database_url = crate::support::empty_database().await;
    node_test(
        "interop.test.mjs",
        vec![
            ("DATABASE_URL", database_url),
            ("BFF_BIN", env!("CARGO_BIN_EXE_bff").to_owned()),
        ],
    )
    .await;
}

/// The demo user `bff dev` seeds signs in through the real Better Auth with the password
/// `bff dev` prints (`tests/interop/demo.test.mjs`), twice prepared as `bff dev` restarts.
#[tokio::test]
async fn the_demo_user_signs_in_with_better_auth() {
    if !requires(&[Tool::Node]) {
        return;
    }
    let database_url = crate::support::empty_database().await;
    bff::dev::prepare(&database_url).await.unwrap();
    bff::dev::prepare(&database_url).await.unwrap();
    node_test(
        "demo.test.mjs",
        vec![
            ("DATABASE_URL", database_url),
            ("DEMO_EMAIL", bff::dev::seed::DEMO_EMAIL.to_owned()),
            ("DEMO_PASSWORD", bff::dev::seed::DEMO_PASSWORD.to_owned()),
        ],
    )
    .await;
}

/// Debian's Chromium (`apt-get install chromium`; `.ci/run` installs it), never a download.
pub(crate) fn chromium() -> String {
    Tool::Chromium.path().display().to_string()
}

/// Runs `script` in `tests/interop` with `env`; panics with its output when it fails.
async fn node_test(script: &'static str, env: Vec<(&'static str, String)>) {
    let dir = interop_dir();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", script])
            .current_dir(&dir)
            .env_remove("BFF_ENV")
            .envs(env)
            .output()
            .expect("node is needed for the interop suite (install Node.js 20+)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
}

/// GraphiQL (development) runs a subscription in a real browser:
/// `tests/interop/graphiql.test.mjs`.
#[tokio::test]
async fn graphiql_runs_subscriptions() {
    if !requires(&[Tool::Node, Tool::Chromium]) {
        return;
    }
    let app = crate::support::TestApp::spawn_with(|env| {
        env.insert("BFF_ENV", "development".into());
    })
    .await;
    let user = app.user("GraphiQL").await;
    crate::support::ledger_change(&app, &user.id, "GRANT", 100_000, "For GraphiQL").await;
    node_test(
        "graphiql.test.mjs",
        vec![
            ("BFF_HTTP", app.url("/graphql")),
            ("GRAPHIQL", app.url("/graphiql")),
            ("COOKIE", user.cookie()),
            ("TOKEN", user.token.clone()),
            ("CHROMIUM", chromium()),
        ],
    )
    .await;
}

/// The real subscription clients (`graphql-ws`, `subscriptions-transport-ws`) against bff:
/// `tests/interop/live.test.mjs`.
#[tokio::test]
async fn real_subscription_clients_receive_events() {
    if !requires(&[Tool::Node]) {
        return;
    }
    let app = crate::support::TestApp::spawn().await;
    let user = app.user("Node").await;
    crate::support::ledger_change(&app, &user.id, "GRANT", 100_000, "For the node clients").await;
    node_test(
        "live.test.mjs",
        vec![
            ("BFF_HTTP", app.url("/graphql")),
            ("BFF_WS", format!("ws://{}/graphql", app.addr)),
            ("COOKIE", user.cookie()),
            ("ORIGIN", crate::support::APP_ORIGIN.to_owned()),
            ("TOKEN", user.token.clone()),
        ],
    )
    .await;
}
