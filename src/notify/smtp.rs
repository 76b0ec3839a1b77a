//! SMTP connections bff opens itself and keeps for reuse, speaking SMTP through lettre's
//! connection type. lettre's own transport (0.11.23) leaves Nagle's algorithm on, and it writes
//! a message's body and its final `CRLF.CRLF` in two writes: the second waits for the server's
//! delayed ACK, 40 ms on Linux, on every message (lettre/lettre#1159, merged after 0.11.23).
//! Here every socket has `TCP_NODELAY`: a message costs its round trips, no more.
//!
//! `smtp://` upgrades with STARTTLS (required; `?tls=opportunistic` when offered, `?tls=none`
//! never), `smtps://` is TLS from the first byte. Certificates are checked against Mozilla's
//! roots plus `BFF_SMTP_CA_FILE`. Idle connections are kept (as many as messages may be in
//! flight) and checked with `NOOP` before reuse once they have idled for a while.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Why an email was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the server is unreachable, busy, or answered a transient error.
    #[error("{0}")]
    Transient(String),
    /// Not worth retrying: the address or the message was refused for good.
    #[error("{0}")]
    Permanent(String),
}

/// How long connecting, or one message's whole conversation, may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// An idle connection older than this is asked `NOOP` before it is used again.
const CHECK_AFTER: Duration = Duration::from_secs(10);
/// An idle connection older than this is dropped instead (servers close them after minutes).
const KEEP_FOR: Duration = Duration::from_secs(60);

/// How long a `NOOP` or a `QUIT` may take (a half-open connection answers neither).
const BRIEF: Duration = Duration::from_secs(2);

/// Says `QUIT` on a connection given up after an error, briefly.
async fn quit(mut conn: AsyncSmtpConnection) {
    let _ = tokio::time::timeout(BRIEF, conn.abort()).await;
}

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    /// `smtp://`: STARTTLS, or no message.
    StartTls,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the server offers it.
    Opportunistic,
    /// `smtp://…?tls=none`: plain text (a local catcher).
    None,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// Where and how to connect, read from the URL.
#[derive(PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    security: Security,
    user: Option<(String, String)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user.as_ref().map(|(name, _)| (name, "…")))
            .finish()
    }
}

fn decode(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| "the user or password is not UTF-8 once decoded".to_owned())
}

impl Target {
    /// `smtp[s]://[user:password@]host[:port][?tls=required|opportunistic|none]`.
    fn parse(url: &str) -> Result<Target, String> {
        let (implicit, rest) = if let Some(rest) = url.strip_prefix("smtps://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("smtp://") {
            (false, rest)
        } else {
            return Err("expected smtp:// or smtps://".into());
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let security = match (implicit, query) {
            (true, "") => Security::Implicit,
            (true, _) => return Err("smtps:// takes no ?tls= (it is TLS throughout)".into()),
            (false, "" | "tls=required") => Security::StartTls,
            (false, "tls=opportunistic") => Security::Opportunistic,
            (false, "tls=none") => Security::None,
            (false, other) => return Err(format!("unknown option {other:?}")),
        };
        let rest = rest.trim_end_matches('/');
        let (user, address) = match rest.rsplit_once('@') {
            Some((user, address)) => {
                let (name, password) = user.split_once(':').unwrap_or((user, ""));
                (Some((decode(name)?, decode(password)?)), address)
            }
            None => (None, rest),
        };
        let default = if implicit { 465 } else { 587 };
        // `[v6]:port`, `[v6]`, `host:port`, `host`; never echo the text (it may be a password
        // when the host was forgotten).
        let (host, port) = match address.strip_prefix('[') {
            Some(bracketed) => match bracketed.split_once(']') {
                Some((host, "")) => (host, None),
                Some((host, port)) => (
                    host,
                    Some(port.strip_prefix(':').ok_or("expected [host]:port")?),
                ),
                None => return Err("an unclosed [ in the host".into()),
            },
            None => match address.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (address, None),
            },
        };
        let port = match port {
            Some(port) => port
                .parse()
                .map_err(|_| "the port is not a number (an IPv6 address goes in [brackets])")?,
            None => default,
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        Ok(Target {
            host: host.to_owned(),
            port,
            security,
            user,
        })
    }
}

/// A TLS stream lettre can speak SMTP over (`smtps://`).
#[derive(Debug)]
struct Tls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// An idle connection and since when.
struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

/// The SMTP client: its target, its TLS settings, and its idle connections.
pub(crate) struct Smtp {
    target: Target,
    /// STARTTLS's parameters (lettre upgrades its own stream).
    starttls: TlsParameters,
    /// `smtps://`'s connector.
    implicit: tokio_rustls::TlsConnector,
    hello: ClientId,
    idle: Mutex<Vec<Idle>>,
    keep: usize,
}

/// The PEM certificates in `path`, DER-encoded.
fn certificates(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("BFF_SMTP_CA_FILE: cannot read {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "BFF_SMTP_CA_FILE: {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

impl Smtp {
    /// The client for `url`, trusting `ca` (a PEM file) besides Mozilla's roots, keeping up to
    /// `keep` idle connections. An error names what is wrong.
    pub(crate) fn new(url: &str, ca: Option<&Path>, keep: usize) -> Result<Smtp, String> {
        let target = Target::parse(url).map_err(|e| format!("BFF_SMTP_URL: {e}"))?;
        let extra = ca.map(certificates).transpose()?.unwrap_or_default();
        let mut builder = TlsParameters::builder(target.host.clone());
        for cert in &extra {
            let cert = Certificate::from_der(cert.to_vec())
                .map_err(|e| format!("BFF_SMTP_CA_FILE: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        let starttls = builder.build().map_err(|e| format!("BFF_SMTP_URL: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra {
            roots
                .add(cert)
                .map_err(|e| format!("BFF_SMTP_CA_FILE: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Smtp {
            target,
            starttls,
            implicit: tokio_rustls::TlsConnector::from(Arc::new(config)),
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            keep,
        })
    }

    /// Sends `message` (formatted) to `envelope`'s recipients on an idle connection or a new
    /// one. A refusal for good (5xx) is `Permanent`; anything else is `Transient`.
    pub(crate) async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let sent = tokio::time::timeout(TIMEOUT, async {
            let mut conn = self.checkout().await?;
            match conn.send(envelope, message).await {
                Ok(_) => {
                    self.checkin(conn);
                    Ok(())
                }
                Err(error) => {
                    let error = classify(&error);
                    quit(conn).await;
                    Err(error)
                }
            }
        })
        .await;
        sent.unwrap_or_else(|_| {
            Err(SendError::Transient(format!(
                "no answer from the SMTP server within {} s",
                TIMEOUT.as_secs()
            )))
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle connection that still answers, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let idle = self.lock().pop();
            let Some(Idle { mut conn, since }) = idle else {
                return self.connect().await;
            };
            let idled = since.elapsed();
            if idled > KEEP_FOR {
                // Most likely closed by the server already: dropped, not asked to QUIT.
                continue;
            }
            if idled < CHECK_AFTER {
                return Ok(conn);
            }
            match tokio::time::timeout(BRIEF, conn.test_connected()).await {
                Ok(true) => return Ok(conn),
                _ => continue,
            }
        }
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.lock();
        if idle.len() < self.keep && !conn.has_broken() {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// Connects (`TCP_NODELAY`), secures the connection as configured, and signs in.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let (host, port) = (&self.target.host, self.target.port);
        let network = |e: io::Error| SendError::Transient(format!("{host}:{port}: {e}"));
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(network)?;
        tcp.set_nodelay(true).map_err(network)?;
        let stream: Box<dyn AsyncTokioStream> = if self.target.security == Security::Implicit {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| SendError::Transient(format!("{host}: {e}")))?;
            let tls = self.implicit.connect(name, tcp).await.map_err(network)?;
            Box::new(Tls(tls))
        } else {
            Box::new(tcp)
        };
        // Before the message, everything is worth retrying: a refused sign-in (535) is a
        // configuration to fix, not a reason to drop the message.
        let lettre = |e: lettre::transport::smtp::Error| SendError::Transient(e.to_string());
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(lettre)?;
        match self.target.security {
            Security::StartTls => conn
                .starttls(self.starttls.clone(), &self.hello)
                .await
                .map_err(lettre)?,
            Security::Opportunistic if conn.can_starttls() => conn
                .starttls(self.starttls.clone(), &self.hello)
                .await
                .map_err(lettre)?,
            Security::Opportunistic | Security::None | Security::Implicit => {}
        }
        if let Some((user, password)) = &self.target.user {
            // A password goes over TLS only (a man in the middle can strip an offer of
            // STARTTLS), unless `?tls=none` said plain text on purpose.
            let encrypted = match self.target.security {
                Security::Implicit | Security::StartTls => true,
                Security::Opportunistic => conn.is_encrypted(),
                Security::None => false,
            };
            if !encrypted && self.target.security != Security::None {
                quit(conn).await;
                return Err(SendError::Transient(
                    "the server offered no STARTTLS: the password is not sent in clear text".into(),
                ));
            }
            let credentials = Credentials::new(user.clone(), password.clone());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
                .map_err(lettre)?;
        }
        Ok(conn)
    }
}

/// A refusal of the message for good (a 5xx answer: no such mailbox) is permanent; anything
/// else (4xx, the network) may pass, and is retried.
fn classify(error: &lettre::transport::smtp::Error) -> SendError {
    if error.is_permanent() {
        SendError::Permanent(error.to_string())
    } else {
        SendError::Transient(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::{Security, Target};

    #[test]
    fn urls_name_the_host_the_port_the_security_and_the_user() {
        let t = Target::parse("smtp://ses%2Buser:p%40ss@email-smtp.eu-west-1.amazonaws.com:587")
            .unwrap();
        assert_eq!(
            t,
            Target {
                host: "email-smtp.eu-west-1.amazonaws.com".into(),
                port: 587,
                security: Security::StartTls,
                user: Some(("ses+user".into(), "p@ss".into())),
            }
        );
        let t = Target::parse("smtps://mail.example.com").unwrap();
        assert_eq!(
            (t.port, t.security, t.user),
            (465, Security::Implicit, None)
        );
        let t = Target::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.security),
            ("127.0.0.1", 2525, Security::None)
        );
        let t = Target::parse("smtp://[::1]:25?tls=opportunistic").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.security),
            ("::1", 25, Security::Opportunistic)
        );
        assert!(Target::parse("smtps://mail.example.com?tls=none").is_err());
        assert!(Target::parse("smtp://mail.example.com:port").is_err());
        assert!(Target::parse("smtp://?tls=none").is_err());
        assert!(Target::parse("smtp://mail?tls=maybe").is_err());
    }
}
