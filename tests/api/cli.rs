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
