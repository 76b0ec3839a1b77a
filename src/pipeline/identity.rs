//! Step 6's first half: who pays for a request ([`payer`]), and the identity a transport that
//! runs no GraphQL request asks for (the account export, a WebSocket's sign-in): a credential
//! that fails pays [`FAILED_AUTH_COST`] from its client address's bucket wherever it is tried.

use std::net::IpAddr;

use super::rate_limit::{FAILED_AUTH_COST, Key};
use crate::auth::Identity;

/// Whose bucket pays for a request, and how much: the viewer's when the credentials sign
/// someone in; the client address's when there are none or they fail (then at least
/// [`FAILED_AUTH_COST`]); nobody's for the photo worker's service tokens.
pub(super) fn payer(identity: Identity, address: Option<IpAddr>, cost: u64) -> (Option<Key>, u64) {
    match identity {
        Identity::Viewer(user_id) => (Some(Key::Viewer(user_id)), cost),
        Identity::Service => (None, cost),
        Identity::Anonymous => (Some(Key::address(address)), cost),
        // A banned person's requests pay as failed sign-ins, from the address's bucket.
        Identity::Failed | Identity::Banned(_) => {
            (Some(Key::address(address)), cost.max(FAILED_AUTH_COST))
        }
        // The database is unreachable: the request will fail on its own.
        Identity::Unknown => (Some(Key::address(address)), cost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failed_authentications_bucket_pays_at_least_its_cost() {
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        assert_eq!(
            payer(Identity::Failed, address, 3),
            (Some(Key::Address([10, 0, 0, 1].into())), FAILED_AUTH_COST)
        );
        assert_eq!(payer(Identity::Service, address, 3), (None, 3));
        assert_eq!(
            payer(Identity::Viewer("u".into()), address, 3),
            (Some(Key::Viewer("u".into())), 3)
        );
    }
}
