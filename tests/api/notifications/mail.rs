//! The SMTP server the notification tests send to: Python's aiosmtpd
//! (`tests/api/support/smtp.py`), a real server on a loopback port, which writes every message
//! it accepts as JSON (envelope, headers, decoded text and HTML parts).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::tools::Tool;

/// A running (or stopped, to simulate an outage) SMTP server.
pub(crate) struct Mail {
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// `smtp.py`'s arguments after the port (TLS and sign-in).
    options: Vec<String>,
    /// What bff is told: `BFF_SMTP_URL` (else [`Mail::url`]'s default) and `BFF_SMTP_CA_FILE`.
    pub url: Option<String>,
    pub ca: Option<PathBuf>,
}

/// A loopback port nobody listens on now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Mail {
    /// A server on a free port.
    pub async fn start() -> Mail {
        Mail::start_with(Vec::new()).await
    }

    /// A server with `smtp.py`'s `options` (`starttls CERT KEY [USER PASSWORD]`, `smtps …`).
    pub async fn start_with(options: Vec<String>) -> Mail {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("smtp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut mail = Mail {
            port: free_port(),
            dir,
            child: None,
            options,
            url: None,
            ca: None,
        };
        mail.up().await;
        mail
    }

    /// `BFF_SMTP_URL` for it: as set, else plain text (a local catcher).
    pub fn url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("smtp://127.0.0.1:{}?tls=none", self.port))
    }

    /// Starts the server (again) on its port.
    pub async fn up(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/support/smtp.py");
        let mut child = Command::new(Tool::Smtp.path())
            .arg(script)
            .arg(&self.dir)
            .arg(self.port.to_string())
            .args(&self.options)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP server starts within 20 s")
            .unwrap();
        assert_eq!(ready.as_deref(), Some("ready"));
        self.child = Some(child);
    }

    /// Stops the server: connections are refused until [`Mail::up`].
    pub async fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Holds every RCPT (a sender stays mid-send) while `on`.
    pub fn stall(&self, on: bool) {
        let path = self.dir.join("stall");
        if on {
            std::fs::write(path, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits up to `within` for at least `n` messages; returns them all.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let messages = self.messages();
            if messages.len() >= n || tokio::time::Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A header of a received message (names are matched ignoring case).
pub(crate) fn header<'a>(message: &'a Value, name: &str) -> &'a str {
    message["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {message}"))
}
