//! `bff check` on a ready database and on one that is not.

use super::*;

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

/// Deliveries that gave up, and deliveries due for minutes that nobody sent (no sender
/// running), are warnings with their counts and the last error.
#[tokio::test]
async fn check_warns_about_failed_and_overdue_notification_deliveries() {
    use diesel_async::SimpleAsyncConnection;
    let url = crate::support::fresh_database().await;
    let (ok, report) = check(&url, &[]);
    assert!(ok, "{report}");
    assert!(
        report.contains("ok    notifications  email off (BFF_SMTP_URL unset); serve sends every 1000 ms; 0 pending (0 retrying, 0 overdue), 0 failed in the last day (0 in all)"),
        "{report}"
    );
    let mut conn = bff::db::connect(&url).await.unwrap();
    bff::dev::seed::create_user(&mut conn, "u-check", "Chuck", "chuck@example.com")
        .await
        .unwrap();
    conn.batch_execute(
        "SELECT bff_notify('u-check', 'PAYMENT_FAILED', '{}'), bff_notify('u-check', 'TRIAL_ENDING', '{}'), \
                bff_notify('u-check', 'SUBSCRIPTION_CANCELED', '{}'); \
         UPDATE notification_deliveries SET state = 'FAILED', attempts = 12, finished_at = now(), \
                last_error = '554 5.7.1 relay denied' \
           WHERE notification_id = (SELECT min(id) FROM notifications); \
         UPDATE notification_deliveries SET not_before = now() - interval '10 minutes' \
           WHERE notification_id = (SELECT min(id) + 1 FROM notifications);",
    )
    .await
    .unwrap();
    let (ok, report) = check(&url, &[]);
    assert!(ok, "warnings do not fail the check: {report}");
    for part in [
        "warn  notifications",
        "2 pending (0 retrying, 1 overdue), 1 failed in the last day (1 in all)",
        "last failure: 554 5.7.1 relay denied",
        "no bff serve is sending",
    ] {
        assert!(report.contains(part), "{part:?} missing from:\n{report}");
    }
}
