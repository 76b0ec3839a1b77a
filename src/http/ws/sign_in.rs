//! A WebSocket connection's sign-in: one attempt paid from the client address's bucket, a
//! failed one as much as a failed sign-in on `/graphql` ([`crate::pipeline`] counts both the
//! same way). Service tokens never subscribe.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderMap;

use crate::app::App;
use crate::auth::service::ServiceCredential;
use crate::auth::{Credential, Identity};

/// Who signed a connection in, and the credential to check again while it is open.
#[derive(Debug)]
pub(super) struct SignedIn {
    /// The user id.
    pub(super) user_id: String,
    /// What they signed in with.
    pub(super) credential: Credential,
}

/// Why a connection could not sign in.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SignInRefusal {
    /// No credential, or one that signs nobody in.
    Unauthenticated(&'static str),
    /// The client address's bucket is empty.
    RateLimited(Duration),
    /// The lookup failed (the database is unreachable).
    Unavailable,
}

/// Signs a connection in with `credentials`, from `address`.
pub(super) async fn sign_in(
    app: &App,
    credentials: &HeaderMap,
    address: Option<IpAddr>,
) -> Result<SignedIn, SignInRefusal> {
    let pipeline = &app.pipeline;
    pipeline
        .charge_address(address, 1)
        .await
        .map_err(SignInRefusal::RateLimited)?;
    let purpose = crate::auth::Purpose::connection();
    let (auth, identity) = pipeline.identify(credentials, false, purpose).await;
    if !matches!(auth.service(), ServiceCredential::Absent) {
        let _ = pipeline.charge_failed_sign_in(address).await;
        return Err(SignInRefusal::Unauthenticated(
            "service tokens do not subscribe",
        ));
    }
    match identity {
        Identity::Viewer(user_id) => match auth.credential() {
            Some(credential) => Ok(SignedIn {
                user_id,
                credential,
            }),
            None => Err(SignInRefusal::Unauthenticated("sign in first")),
        },
        Identity::Unknown => Err(SignInRefusal::Unavailable),
        Identity::Banned(_) => Err(SignInRefusal::Unauthenticated("the account is banned")),
        Identity::Anonymous | Identity::Failed | Identity::Service => {
            let _ = pipeline.charge_failed_sign_in(address).await;
            Err(SignInRefusal::Unauthenticated("sign in first"))
        }
    }
}
