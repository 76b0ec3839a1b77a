//! Build-time facts: rebuild when a migration is added or changed (`embed_migrations!` reads
//! `migrations/` at compile time, and cargo does not watch that directory on its own), and the
//! commit the binary is built from (`BFF_COMMIT`, for `bff --version` and the image's labels):
//! the `BFF_COMMIT` variable when set (the container build passes it), else `git rev-parse`,
//! else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=BFF_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = std::env::var("BFF_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let output = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BFF_COMMIT={commit}");
}
