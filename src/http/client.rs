//! Who is calling: the client's address, from the TCP peer or, behind proxies listed in
//! `BFF_TRUSTED_PROXIES`, from `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::server::{IpNet, canonical};

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
/// right-most address of `X-Forwarded-For` that is not a trusted proxy (the left-most entries
/// are whatever the client wrote, so they are never believed).
pub(crate) fn address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = canonical(peer?.ip());
    if !trusted.iter().any(|net| net.contains(peer)) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .map(canonical)
        .collect();
    Some(
        forwarded
            .iter()
            .rev()
            .find(|ip| !trusted.iter().any(|net| net.contains(**ip)))
            .copied()
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 1.2.3.4".parse().unwrap());
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        assert_eq!(
            address(Some(peer), &headers, &[]),
            Some("10.0.0.5".parse().unwrap())
        );
        let trusted = nets(&["10.0.0.0/8"]);
        // The client wrote 6.6.6.6 itself; the proxy appended the address it saw.
        assert_eq!(
            address(Some(peer), &headers, &trusted),
            Some("1.2.3.4".parse().unwrap())
        );
        let outsider: SocketAddr = "9.9.9.9:1".parse().unwrap();
        assert_eq!(
            address(Some(outsider), &headers, &trusted),
            Some("9.9.9.9".parse().unwrap())
        );
    }
}
