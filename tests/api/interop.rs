//! Runs the Node suite in `tests/interop/` against the real `better-auth` package (pinned by
//! its lockfile): Better Auth migrates its own tables, signs up, signs in, signs out, and bff
//! must agree at every step. Installs the node modules with `npm ci` when they are missing.

use std::path::Path;
use std::process::Command;

#[tokio::test]
async fn bff_interoperates_with_real_better_auth() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    if !dir.join("node_modules/better-auth").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the interop suite (install Node.js 20+)");
        assert!(status.success(), "npm ci failed in tests/interop");
    }
    let database_url = crate::support::empty_database().await;
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", "interop.test.mjs"])
            .current_dir(&dir)
            .env("DATABASE_URL", database_url)
            .env("BFF_BIN", env!("CARGO_BIN_EXE_bff"))
            .env_remove("BFF_ENV")
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
        "interop suite failed:\n{stdout}\n{stderr}"
    );
}
