//! TLS to PostgreSQL with libpq's `sslmode` table, against three private clusters: one like a
//! stock Debian server (TLS offered with a self-signed "snakeoil" certificate, plaintext
//! accepted), one that accepts TLS only with a certificate from a private CA, and the plain
//! test cluster (no TLS at all). Certificates are made with openssl.

use std::path::{Path, PathBuf};
use std::process::Command;

use bff::dev::postgres::{Cluster, Durability};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;

use crate::support::{TestApp, fresh_database, migrated_database, user_in};
use crate::support::{Tool, requires};

fn openssl(args: &[&str], dir: &Path) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed for the TLS test");
    assert!(
        status.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1, in `dir`.
pub fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    self_signed(dir, "ca", "/CN=bff test CA", &[]);
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        dir,
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "3650",
            "-extfile",
            "ext.cnf",
        ],
        dir,
    );
}

/// A self-signed certificate `<name>.pem` with key `<name>.key` in `dir`, with `extensions`.
fn self_signed(dir: &Path, name: &str, subject: &str, extensions: &[&str]) {
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem, "-days",
        "3650", "-subj", subject,
    ];
    for extension in extensions {
        args.extend(["-addext", extension]);
    }
    openssl(&args, dir);
}

/// Turns TLS on in `data` with `cert`/`key` from `certs`, and writes `hba` as pg_hba.conf.
fn enable_ssl(data: &Path, certs: &Path, cert: &str, key: &str, hba: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(certs.join(cert), data.join("server.crt"))?;
    std::fs::copy(certs.join(key), data.join("server.key"))?;
    std::fs::set_permissions(
        data.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )?;
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf)?;
    text.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    std::fs::write(&conf, text)?;
    std::fs::write(data.join("pg_hba.conf"), hba)
}

/// Tests that start the same cluster at once must take turns.
static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The TLS-only cluster and its CA file.
fn tls_cluster() -> (Cluster, PathBuf) {
    let _once = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let certs = base.join("bff-tls-certs");
    let root = base.join("bff-tls-postgres");
    let cluster = Cluster::ensure_with(&root, Durability::Fast, |data| {
        make_certificates(&certs);
        enable_ssl(
            data,
            &certs,
            "server.crt",
            "server.key",
            "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
    })
    .expect("start the TLS cluster");
    (cluster, certs.join("ca.pem"))
}

/// A cluster like Debian's stock PostgreSQL: `ssl = on` with a self-signed certificate for
/// `localhost` (as `make-ssl-cert` makes it), plaintext allowed. Returns it and the certificate.
fn snakeoil_cluster() -> (Cluster, PathBuf) {
    let _once = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let certs = base.join("bff-snakeoil-certs");
    let root = base.join("bff-snakeoil-postgres");
    let cluster = Cluster::ensure_with(&root, Durability::Fast, |data| {
        std::fs::create_dir_all(&certs)?;
        self_signed(
            &certs,
            "snakeoil",
            "/CN=localhost",
            &["subjectAltName=DNS:localhost", "basicConstraints=CA:FALSE"],
        );
        enable_ssl(
            data,
            &certs,
            "snakeoil.pem",
            "snakeoil.key",
            "host all all 127.0.0.1/32 trust\n",
        )
    })
    .expect("start the snakeoil cluster");
    (cluster, certs.join("snakeoil.pem"))
}

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ssl: bool,
}

/// Connects as bff does; whether the connection is encrypted, or the error's text.
async fn encrypted(url: &str, ca: Option<&Path>) -> Result<bool, String> {
    let mut conn = bff::db::connect_with(url, ca)
        .await
        .map_err(|e| e.to_string())?;
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.ssl)
}

fn assert_refused(result: Result<bool, String>, words: &[&str]) {
    let error = result.expect_err("the connection must be refused");
    for word in words {
        assert!(error.contains(word), "{word:?} missing from: {error}");
    }
}

#[tokio::test]
async fn every_sslmode_against_a_stock_debian_server_does_what_libpq_does() {
    if !requires(&[Tool::OpenSsl]) {
        return;
    }
    let (cluster, snakeoil) = snakeoil_cluster();
    let at = |host: &str, query: &str| {
        format!(
            "{}{query}",
            cluster.url("postgres").replace("127.0.0.1", host)
        )
    };
    let url = |query: &str| at("127.0.0.1", query);

    // No sslmode: prefer, encrypted without a certificate check — where this used to fail.
    assert_eq!(encrypted(&url(""), None).await, Ok(true));
    assert_eq!(encrypted(&url("?sslmode=prefer"), None).await, Ok(true));
    assert_eq!(encrypted(&url("?sslmode=require"), None).await, Ok(true));
    assert_eq!(encrypted(&url("?sslmode=disable"), None).await, Ok(false));
    assert_eq!(encrypted(&url("?sslmode=allow"), None).await, Ok(false));

    // The verify modes refuse an unknown self-signed certificate and say how to fix it.
    for mode in ["verify-ca", "verify-full"] {
        assert_refused(
            encrypted(&url(&format!("?sslmode={mode}")), None).await,
            &["not trusted", "DATABASE_CA_CERT", "sslmode=require"],
        );
    }
    // Trusting the certificate itself: verify-ca passes; verify-full checks the name.
    assert_eq!(
        encrypted(&url("?sslmode=verify-ca"), Some(&snakeoil)).await,
        Ok(true)
    );
    assert_refused(
        encrypted(&url("?sslmode=verify-full"), Some(&snakeoil)).await,
        &["not valid for the host", "127.0.0.1", "verify-ca"],
    );
    assert_eq!(
        encrypted(&at("localhost", "?sslmode=verify-full"), Some(&snakeoil)).await,
        Ok(true)
    );
    // sslrootcert in the URL does the same as DATABASE_CA_CERT.
    let rootcert = format!("?sslmode=verify-full&sslrootcert={}", snakeoil.display());
    assert_eq!(encrypted(&at("localhost", &rootcert), None).await, Ok(true));
    // As in libpq, require with a root certificate configured verifies the chain.
    let (_, other_ca) = tls_cluster();
    assert_refused(
        encrypted(&url("?sslmode=require"), Some(&other_ca)).await,
        &["not trusted"],
    );
    // An unknown sslmode and client certificates are refused by name.
    assert_refused(
        encrypted(&url("?sslmode=sometimes"), None).await,
        &["sslmode=sometimes"],
    );
    assert_refused(encrypted(&url("?sslcert=/x.pem"), None).await, &["sslcert"]);
}

#[tokio::test]
async fn a_tls_only_server_with_a_private_ca_works_in_every_mode_that_allows_it() {
    if !requires(&[Tool::OpenSsl]) {
        return;
    }
    let (cluster, ca) = tls_cluster();
    let url = |mode: &str| format!("{}?sslmode={mode}", cluster.url("postgres"));

    assert_refused(
        encrypted(&url("disable"), None).await,
        &["refuses unencrypted", "sslmode=prefer"],
    );
    assert_eq!(encrypted(&url("allow"), None).await, Ok(true));
    assert_eq!(encrypted(&url("prefer"), None).await, Ok(true));
    assert_eq!(encrypted(&url("require"), None).await, Ok(true));
    assert_refused(
        encrypted(&url("verify-full"), None).await,
        &["not trusted", "DATABASE_CA_CERT"],
    );
    assert_eq!(encrypted(&url("verify-ca"), Some(&ca)).await, Ok(true));
    assert_eq!(encrypted(&url("verify-full"), Some(&ca)).await, Ok(true));
    assert_eq!(encrypted(&url("require"), Some(&ca)).await, Ok(true));
    // The certificate names 127.0.0.1 only.
    let by_name = url("verify-full").replace("127.0.0.1", "localhost");
    assert_refused(
        encrypted(&by_name, Some(&ca)).await,
        &["not valid for the host", "localhost"],
    );
}

#[tokio::test]
async fn a_server_without_tls_is_named_as_such_when_tls_is_required() {
    if !requires(&[Tool::OpenSsl]) {
        return;
    }
    let url = fresh_database().await;
    assert_eq!(encrypted(&url, None).await, Ok(false), "prefer falls back");
    for mode in ["require", "verify-full"] {
        assert_refused(
            encrypted(&format!("{url}?sslmode={mode}"), None).await,
            &[
                "does not offer TLS",
                &format!("sslmode={mode}"),
                "sslmode=prefer",
            ],
        );
    }
}

#[tokio::test]
async fn the_server_migrates_and_serves_over_verified_tls() {
    if !requires(&[Tool::OpenSsl]) {
        return;
    }
    let (cluster, ca) = tls_cluster();
    let url = |db: &str| format!("{}?sslmode=verify-full", cluster.url(db));
    let name = format!("bff_tls_{}", std::process::id());
    let database_url = migrated_database(url, Some(&ca), &name).await;
    let user = user_in(&database_url, Some(&ca), "Tls").await;
    let ca_path = ca.to_string_lossy().into_owned();
    let app = TestApp::spawn_on(database_url, |env| {
        env.insert("DATABASE_CA_CERT", ca_path);
    })
    .await;
    assert_eq!(
        app.viewer_id(&[("cookie", user.cookie())]).await,
        Some(user.id.clone())
    );
}

/// `bff check` against the stock-Debian-like server with a plain URL: it connects (this is
/// where `bff migrate` and `bff serve` used to fail the TLS handshake) and reports the TLS in use.
#[tokio::test]
async fn check_connects_to_a_stock_debian_server_with_a_plain_url_and_reports_tls() {
    if !requires(&[Tool::OpenSsl]) {
        return;
    }
    let (cluster, _) = snakeoil_cluster();
    let name = format!("bff_snakeoil_{}", std::process::id());
    let mut admin = bff::db::connect(&cluster.url("postgres")).await.unwrap();
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    bff::dev::create_database_on(&mut admin, &name, None)
        .await
        .unwrap();
    let mut db = bff::db::connect(&cluster.url(&name)).await.unwrap();
    bff::db::create_better_auth_tables(&mut db).await.unwrap();
    let migrate = crate::cli::bff()
        .arg("migrate")
        .env("DATABASE_URL", cluster.url(&name))
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let check = crate::cli::check(&cluster.url(&name), &[]);
    assert!(check.0, "{}", check.1);
    assert!(
        check.1.contains("tls") && check.1.contains("TLSv1.3") && check.1.contains("not verified"),
        "{}",
        check.1
    );
}
