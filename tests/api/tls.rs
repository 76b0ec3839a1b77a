//! TLS to PostgreSQL, against a private cluster that accepts TLS connections only and presents
//! a certificate from a test CA (made with openssl).

use std::path::{Path, PathBuf};
use std::process::Command;

use bff::dev::postgres::{Cluster, Durability};
use chrono::{Duration, Utc};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;

use crate::support::{TestApp, TestUser};

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
fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=bff test CA",
        ],
        dir,
    );
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

/// The TLS-only cluster and its CA file.
fn tls_cluster() -> (Cluster, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let certs = base.join("bff-tls-certs");
    let root = base.join("bff-tls-postgres");
    let cluster = Cluster::ensure_with(&root, Durability::Fast, |data| {
        make_certificates(&certs);
        for file in ["server.crt", "server.key"] {
            std::fs::copy(certs.join(file), data.join(file))?;
        }
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )?;
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text)?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
    })
    .expect("start the TLS cluster");
    (cluster, certs.join("ca.pem"))
}

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ssl: bool,
}

#[tokio::test]
async fn connections_use_verified_tls_and_the_server_works_over_it() {
    let (cluster, ca) = tls_cluster();
    let url = |db: &str, mode: &str| format!("{}?sslmode={mode}", cluster.url(db));

    let mut conn = bff::db::connect_with(&url("postgres", "require"), Some(&ca))
        .await
        .unwrap();
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert!(row.ssl, "the connection is not encrypted");
    let verify_full = bff::db::connect_with(&url("postgres", "verify-full"), Some(&ca)).await;
    assert!(verify_full.is_ok(), "verify-full is read as require");

    let untrusted = bff::db::connect(&url("postgres", "require"))
        .await
        .err()
        .expect("an unknown CA must be refused");
    assert!(untrusted.to_string().contains("TLS"), "{untrusted}");
    assert!(
        bff::db::connect(&url("postgres", "disable")).await.is_err(),
        "the server accepts plaintext"
    );

    // The whole server over TLS: migrate, sign in, read the viewer.
    let name = format!("bff_tls_{}", std::process::id());
    bff::dev::create_database_on(&mut conn, &name, None)
        .await
        .unwrap();
    let mut db = bff::db::connect_with(&url(&name, "require"), Some(&ca))
        .await
        .unwrap();
    bff::db::create_better_auth_tables(&mut db).await.unwrap();
    bff::db::migrate(db).await.unwrap();
    let mut db = bff::db::connect_with(&url(&name, "require"), Some(&ca))
        .await
        .unwrap();
    let id = bff::dev::seed::random_token();
    bff::dev::seed::create_user(&mut db, &id, "Tls", "tls@example.com")
        .await
        .unwrap();
    let token = bff::dev::seed::create_session(&mut db, &id, Utc::now() + Duration::days(1))
        .await
        .unwrap();
    let ca_path = ca.to_string_lossy().into_owned();
    let app = TestApp::spawn_on(url(&name, "require"), |env| {
        env.insert("DATABASE_CA_CERT", ca_path);
    })
    .await;
    let user = TestUser {
        id: id.clone(),
        token,
    };
    assert_eq!(app.viewer_id(&[("cookie", user.cookie())]).await, Some(id));
    diesel::sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}
