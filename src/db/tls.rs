//! TLS to PostgreSQL (managed databases such as Neon require it). Connections go through
//! tokio-postgres with a rustls connector: `sslmode=prefer` (the default) uses TLS when the
//! server offers it, `sslmode=require` insists. Certificates are always verified — against the
//! Mozilla roots, plus the PEM file in `DATABASE_CA_CERT` for private CAs (RDS, self-signed) —
//! so `verify-ca`/`verify-full` are read as `require`.

use std::path::Path;
use std::sync::Arc;

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for every database connection: Mozilla's roots plus the extra CA, if any.
pub fn connector(extra_ca: Option<&Path>) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect())
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// tokio-postgres knows `disable`, `prefer` and `require`; we always verify certificates, so
/// libpq's `verify-ca` and `verify-full` mean `require` here.
pub fn normalize_url(url: &str) -> String {
    url.replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require")
}

/// Opens one connection through `tls`.
pub async fn establish(
    url: &str,
    tls: MakeRustlsConnect,
) -> Result<AsyncPgConnection, ConnectionError> {
    let (client, connection) = tokio_postgres::connect(&normalize_url(url), tls)
        .await
        .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_become_require() {
        assert_eq!(
            normalize_url("postgres://u@h/db?sslmode=verify-full&channel_binding=require"),
            "postgres://u@h/db?sslmode=require&channel_binding=require"
        );
        assert_eq!(normalize_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn a_missing_ca_file_is_a_clear_error() {
        let error = connector(Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }
}
