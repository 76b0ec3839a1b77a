//! Email over TLS to a real server (aiosmtpd with a certificate from a private CA, trusted
//! through `BFF_SMTP_CA_FILE`): STARTTLS then sign-in (`smtp://`, STARTTLS required), and TLS
//! from the first byte (`smtps://`). A server without STARTTLS gets nothing in clear text, and a
//! certificate bff does not trust gets nothing: both are retried, and say why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::mail::{Mail, header};
use super::push_fake::FakeExpo;
use super::{app, completed_job, count, customer};
use crate::support::{Tool, eventually, requires};

/// A CA and a certificate for 127.0.0.1 (made once per test, in its own directory).
fn certificates() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("smtp-tls-{}", uuid::Uuid::new_v4()));
    crate::tls::make_certificates(&dir);
    dir
}

/// An aiosmtpd in `mode` (`starttls`, `smtps`) with the certificate in `certs`, requiring the
/// sign-in `ada`/`s3cret pass`.
async fn tls_server(mode: &str, certs: &Path) -> Mail {
    let file = |name: &str| certs.join(name).display().to_string();
    Mail::start_with(vec![
        mode.into(),
        file("server.crt"),
        file("server.key"),
        "ada".into(),
        "s3cret pass".into(),
    ])
    .await
}

/// One job's email reaches `mail` (configured by the caller), with its headers intact.
async fn one_email_arrives(mail: &Mail) {
    let expo = FakeExpo::start().await;
    let app = app(mail, &expo, 0).await;
    let user = customer(&app, "Tess").await;
    completed_job(&app, &user).await;
    let messages = mail.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(messages.len(), 1, "one email over TLS");
    assert_eq!(header(&messages[0], "Subject"), "Your photos are ready");
}

#[tokio::test]
async fn email_goes_over_starttls_with_a_sign_in_and_over_implicit_tls() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    let certs = certificates();
    let mut starttls = tls_server("starttls", &certs).await;
    // The password percent-encoded in the URL, as a URL requires.
    starttls.url = Some(format!(
        "smtp://ada:s3cret%20pass@127.0.0.1:{}",
        starttls.port
    ));
    starttls.ca = Some(certs.join("ca.pem"));
    one_email_arrives(&starttls).await;

    let mut smtps = tls_server("smtps", &certs).await;
    smtps.url = Some(format!(
        "smtps://ada:s3cret%20pass@127.0.0.1:{}",
        smtps.port
    ));
    smtps.ca = Some(certs.join("ca.pem"));
    one_email_arrives(&smtps).await;
}

/// Why the one delivery of the one person of `app` has not gone, once it has been tried.
async fn pending_because(mail: &Mail) -> String {
    let expo = FakeExpo::start().await;
    let app = app(mail, &expo, 0).await;
    let user = customer(&app, "Target").await;
    completed_job(&app, &user).await;
    let tried = format!(
        "SELECT count(*) AS n FROM notification_deliveries WHERE user_id = '{}' \
         AND state = 'PENDING' AND attempts >= 1 AND last_error IS NOT NULL",
        user.id
    );
    eventually("the email was tried", async || {
        count(&app, &tried).await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        mail.messages().is_empty(),
        "nothing was sent: {:?}",
        mail.messages()
    );
    let mut conn = app.db().await;
    #[derive(diesel::QueryableByName)]
    struct Error {
        #[diesel(sql_type = diesel::sql_types::Text)]
        last_error: String,
    }
    let error: Error = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT last_error FROM notification_deliveries WHERE user_id = $1 AND channel = 'EMAIL'",
        )
        .bind::<diesel::sql_types::Text, _>(&user.id),
        &mut conn,
    )
    .await
    .unwrap();
    error.last_error
}

#[tokio::test]
async fn no_email_leaves_in_clear_text_or_to_a_server_bff_does_not_trust() {
    if !requires(&[Tool::Smtp]) {
        return;
    }
    // A server without STARTTLS, and bff's default for smtp:// (STARTTLS required).
    let mut plain = Mail::start().await;
    plain.url = Some(format!("smtp://127.0.0.1:{}", plain.port));
    let why = pending_because(&plain).await;
    assert!(why.contains("STARTTLS"), "{why}");

    // A certificate from a CA bff was not told about.
    let certs = certificates();
    let mut untrusted = tls_server("starttls", &certs).await;
    untrusted.url = Some(format!(
        "smtp://ada:s3cret%20pass@127.0.0.1:{}",
        untrusted.port
    ));
    let why = pending_because(&untrusted).await;
    assert!(why.to_lowercase().contains("certificate"), "{why}");
}
