//! Better Auth JWTs (the `jwt()` plugin) as bearer tokens for the mobile client, checked
//! against keys in Better Auth's `jwks` table. The key pair is made with openssl.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bff::db::better_auth::{jwks, users};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::{TestApp, first_code};
use crate::support::{Tool, requires};

pub(crate) const ISSUER: &str = "http://localhost:5173";

/// An Ed25519 key pair: the PKCS#8 DER private key and the JWK `x` of the public key.
pub(crate) fn key_pair(name: &str) -> (Vec<u8>, String) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bff-jwt-keys-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl is needed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-outform",
        "DER",
        "-out",
        "key.der",
    ]);
    run(&[
        "pkey", "-inform", "DER", "-in", "key.der", "-pubout", "-outform", "DER", "-out", "pub.der",
    ]);
    let private = std::fs::read(dir.join("key.der")).unwrap();
    let public = std::fs::read(dir.join("pub.der")).unwrap();
    (
        private,
        URL_SAFE_NO_PAD.encode(&public[public.len() - 32..]),
    )
}

pub(crate) async fn add_key(app: &TestApp, kid: &str, x: &str, alg: &str, expired: bool) {
    let mut conn = app.db().await;
    diesel::insert_into(jwks::table)
        .values((
            jwks::id.eq(kid),
            jwks::public_key.eq(json!({ "crv": "Ed25519", "x": x, "kty": "OKP" }).to_string()),
            jwks::private_key.eq("encrypted, unused by bff"),
            jwks::created_at.eq(Utc::now()),
            jwks::expires_at.eq(expired.then(|| Utc::now() - chrono::Duration::minutes(1))),
            jwks::alg.eq(alg),
            jwks::crv.eq("Ed25519"),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
}

pub(crate) fn token(private: &[u8], kid: &str, sub: &str, iss: &str, exp_offset: i64) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    header.typ = None;
    let now = Utc::now().timestamp();
    let claims = json!({ "sub": sub, "iat": now, "exp": now + exp_offset, "iss": iss, "aud": iss, "id": sub, "email": "x@example.com" });
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(private)).unwrap()
}

fn bearer(token: String) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

#[tokio::test]
async fn a_better_auth_jwt_signs_the_viewer_in_and_forgeries_do_not() {
    if !requires(&[Tool::OpenSsl]) {
        return;
    }
    let app = TestApp::spawn().await;
    let user = app.user("Mobile").await;
    let (private, x) = key_pair("main");
    let (other_private, other_x) = key_pair("other");
    add_key(&app, "kid-good", &x, "EdDSA", false).await;
    add_key(&app, "kid-expired", &other_x, "EdDSA", true).await;
    add_key(&app, "kid-es256", &x, "ES256", false).await;

    let good = token(&private, "kid-good", &user.id, ISSUER, 900);
    assert_eq!(
        app.viewer_id(&bearer(good.clone())).await,
        Some(user.id.clone())
    );
    // The JWT wins over a cookie, like any bearer.
    let other = app.user("Other").await;
    let mut both = bearer(good.clone());
    both.push(("cookie", other.cookie()));
    assert_eq!(app.viewer_id(&both).await, Some(user.id.clone()));

    let forgeries = [
        (
            "expired",
            token(&private, "kid-good", &user.id, ISSUER, -60),
        ),
        (
            "another issuer",
            token(&private, "kid-good", &user.id, "https://evil.example", 900),
        ),
        (
            "unknown kid",
            token(&private, "kid-missing", &user.id, ISSUER, 900),
        ),
        (
            "expired key",
            token(&other_private, "kid-expired", &user.id, ISSUER, 900),
        ),
        (
            "signed by another key",
            token(&other_private, "kid-good", &user.id, ISSUER, 900),
        ),
        (
            "algorithm not the key's",
            token(&private, "kid-es256", &user.id, ISSUER, 900),
        ),
    ];
    for (what, forged) in forgeries {
        assert_eq!(app.viewer_id(&bearer(forged)).await, None, "{what}");
    }
    let (_, body) = app
        .post(
            "mutation { claimPhotoJobs { id } }",
            json!({}),
            &bearer(good.clone()),
        )
        .await;
    assert_eq!(
        first_code(&body),
        "FORBIDDEN",
        "a viewer JWT on a worker operation"
    );

    let mut conn = app.db().await;
    diesel::delete(users::table.find(&user.id))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(app.viewer_id(&bearer(good)).await, None, "the user is gone");
}

#[tokio::test]
async fn without_the_jwt_plugins_table_a_jwt_is_simply_no_session() {
    if !requires(&[Tool::OpenSsl]) {
        return;
    }
    let app = TestApp::spawn().await;
    let user = app.user("NoPlugin").await;
    let (private, _) = key_pair("noplugin");
    app.db()
        .await
        .batch_execute("DROP TABLE jwks")
        .await
        .unwrap();
    assert_eq!(
        app.viewer_id(&bearer(token(&private, "kid", &user.id, ISSUER, 900)))
            .await,
        None
    );
}
