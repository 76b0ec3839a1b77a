//! The `bff` binary: help and version, configuration errors at start-up, `migrate`, `check`,
//! `schema`, `dev`.

use std::process::Command;
use std::time::Duration;

mod check;
mod dev;
mod help;
mod migrate;
mod serve;

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
