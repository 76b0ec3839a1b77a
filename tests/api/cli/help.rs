//! `bff schema`, `--help`, `--version`, and mistyped commands.

use super::*;

#[test]
fn schema_prints_the_sdl() {
    let output = bff().arg("schema").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        bff::graphql::sdl()
    );
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
