//! One-click unsubscribe links (RFC 8058): a token naming a person and the kinds an email was
//! about, signed with a key derived from `BETTER_AUTH_SECRET` (so a link cannot be made for
//! anyone else, or for other kinds), that turns those kinds' email off with no sign-in. Links
//! do not expire: an old email's footer keeps working.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::db::notifications::NotificationKind;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks unsubscribe tokens.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

/// What a valid token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Whose email.
    pub user_id: String,
    /// The kinds to turn off.
    pub kinds: Vec<NotificationKind>,
}

impl Signer {
    /// The signer whose key derives from Better Auth's secret.
    pub fn new(secret: &SecretString) -> Signer {
        let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(b"bff notification unsubscribe v1");
        Signer {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    /// The token for `user_id`'s email about `kinds`.
    pub fn token(&self, user_id: &str, kinds: &[NotificationKind]) -> String {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_db()).collect();
        let payload = format!("{user_id}\n{}", kinds.join(","));
        let signature = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// What `token` names, if this signer made it.
    pub fn verify(&self, token: &str) -> Option<Unsubscribe> {
        let (payload, signature) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(&payload).verify_slice(&signature).ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let (user_id, kinds) = payload.split_once('\n')?;
        let kinds = kinds
            .split(',')
            .map(NotificationKind::parse)
            .collect::<Option<Vec<_>>>()?;
        (!user_id.is_empty() && !kinds.is_empty()).then(|| Unsubscribe {
            user_id: user_id.to_owned(),
            kinds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_one_person_and_their_kinds_and_cannot_be_altered() {
        let signer = Signer::new(&SecretString::from("a-better-auth-secret-of-32-chars!"));
        let token = signer.token("user-1", &[NotificationKind::JobCompleted]);
        assert_eq!(
            signer.verify(&token),
            Some(Unsubscribe {
                user_id: "user-1".into(),
                kinds: vec![NotificationKind::JobCompleted]
            })
        );
        let (_, signature) = token.split_once('.').unwrap();
        let forged = format!(
            "{}.{signature}",
            URL_SAFE_NO_PAD.encode("user-2\nJOB_COMPLETED")
        );
        assert_eq!(signer.verify(&forged), None);
        let other = Signer::new(&SecretString::from("another-secret-another-secret-!!"));
        assert_eq!(other.verify(&token), None);
        assert_eq!(signer.verify("garbage"), None);
    }
}
