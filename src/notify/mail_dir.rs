//! A directory that catches email instead of sending it (`BFF_SMTP_URL=file://DIRECTORY`,
//! `bff dev`'s default `.bff/mail`): each message is written as `<key>.eml`, the exact bytes
//! an SMTP server would have received (open it in any mail client), with `<key>.json` beside
//! it (subject, recipient, time and both parts) for the development page `/dev/mail`. The file
//! is named after the message's idempotency key, so a resend replaces it: the directory shows
//! what a person would have received, once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A caught email, as listed by `/dev/mail`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Caught {
    /// The file stem: `<key>.eml` and `<key>.json`.
    pub key: String,
    /// When it was written.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The `To:` mailbox.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// The one-click unsubscribe URL.
    pub unsubscribe: String,
}

/// One email as written: its `Message-ID` (which names the files), recipient and parts.
pub(crate) struct Letter<'a> {
    /// The `Message-ID`.
    pub message_id: &'a str,
    /// The `To:` mailbox.
    pub to: &'a str,
    /// The subject.
    pub subject: &'a str,
    /// The text part.
    pub text: &'a str,
    /// The HTML part.
    pub html: &'a str,
    /// The one-click unsubscribe URL.
    pub unsubscribe: &'a str,
}

/// The catching directory.
#[derive(Clone, Debug)]
pub struct MailDir {
    dir: PathBuf,
}

/// The file stem for a `Message-ID`: its letters, digits, dots and dashes.
fn key(message_id: &str) -> String {
    message_id
        .trim_matches(['<', '>'])
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `bytes` to `path` through a temporary file, so a reader never sees half of it.
async fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, path).await
}

impl MailDir {
    /// Catches mail in `dir` (created at the first message).
    pub fn new(dir: PathBuf) -> MailDir {
        MailDir { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes one message: `eml` is the formatted message.
    pub(crate) async fn write(&self, eml: &[u8], letter: &Letter<'_>) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let caught = Caught {
            key: key(letter.message_id),
            at: chrono::Utc::now(),
            to: letter.to.to_owned(),
            subject: letter.subject.to_owned(),
            text: letter.text.to_owned(),
            html: letter.html.to_owned(),
            unsubscribe: letter.unsubscribe.to_owned(),
        };
        let json = serde_json::to_vec_pretty(&caught).map_err(std::io::Error::other)?;
        write_whole(&self.dir.join(format!("{}.eml", caught.key)), eml).await?;
        write_whole(&self.dir.join(format!("{}.json", caught.key)), &json).await
    }

    /// Every caught message, newest first (none when the directory does not exist yet).
    pub async fn list(&self) -> std::io::Result<Vec<Caught>> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut caught = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = tokio::fs::read(&path).await?;
                if let Ok(one) = serde_json::from_slice::<Caught>(&bytes) {
                    caught.push(one);
                }
            }
        }
        caught.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.key.cmp(&a.key)));
        Ok(caught)
    }

    /// One caught message by its key; `None` for a key that names none (or is not a key).
    pub async fn get(&self, key: &str) -> Option<Caught> {
        if key.is_empty() || self::key(key) != key || key.starts_with('.') {
            return None;
        }
        let bytes = tokio::fs::read(self.dir.join(format!("{key}.json")))
            .await
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The raw message (`.eml`) by its key.
    pub async fn eml(&self, key: &str) -> Option<Vec<u8>> {
        self.get(key).await?;
        tokio::fs::read(self.dir.join(format!("{key}.eml")))
            .await
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn keys_are_plain_file_names() {
        assert_eq!(
            key("<notification-42@example.com>"),
            "notification-42_example.com"
        );
        assert_eq!(key("../../etc/passwd"), ".._.._etc_passwd");
    }
}
