//! Credentials kept by connections that outlive a request (WebSockets), and checking them
//! again: a signed-out or expired session, a JWT whose key or expiry no longer holds, or any
//! credential of a person who no longer exists or whose ban holds, no longer signs anyone in.

use std::collections::HashSet;

use diesel_async::AsyncPgConnection;

/// What a long-lived connection signed in with, checked again while it stays open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A Better Auth session token.
    Session(String),
    /// A Better Auth JWT, and the issuer it must name.
    Jwt(String, String),
}

/// Which of `credentials` still sign someone in, in order: one statement for every session
/// token (its user must exist); a JWT is verified again on its own, and one statement checks
/// that the people the JWTs name still exist (a JWT outlives its person's deletion).
pub async fn still_valid(
    conn: &mut AsyncPgConnection,
    credentials: &[Credential],
) -> diesel::QueryResult<Vec<bool>> {
    let tokens: Vec<String> = credentials
        .iter()
        .filter_map(|c| match c {
            Credential::Session(token) => Some(token.clone()),
            Credential::Jwt(..) => None,
        })
        .collect();
    let live: HashSet<String> = crate::db::better_auth::live_sessions(conn, &tokens)
        .await?
        .into_iter()
        .collect();
    let mut named = Vec::with_capacity(credentials.len());
    for credential in credentials {
        named.push(match credential {
            Credential::Session(token) => live.contains(token).then_some(None),
            Credential::Jwt(token, issuer) => {
                let mut conn: &mut AsyncPgConnection = conn;
                super::jwt::verify(&mut conn, token, issuer)
                    .await?
                    .map(Some)
            }
        });
    }
    let people: Vec<String> = named.iter().flatten().flatten().cloned().collect();
    let existing: HashSet<String> = crate::db::better_auth::existing_users(conn, &people)
        .await?
        .into_iter()
        .collect();
    Ok(named
        .into_iter()
        .map(|n| match n {
            None => false,
            Some(None) => true,
            Some(Some(user)) => existing.contains(&user),
        })
        .collect())
}
