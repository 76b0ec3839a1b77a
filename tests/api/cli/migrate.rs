//! `bff migrate` and the migrations `bff serve` accepts.

use super::*;

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
