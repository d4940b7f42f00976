//! Credentials and tokens: argon2id password hashes, short-lived JWT access tokens (HS256), and
//! rotating opaque refresh tokens.
//!
//! A refresh token is `<id>.<secret>`; only SHA-256 of the secret is stored. Each use spends it
//! and issues the next one in the same family; presenting a spent token again means it was
//! stolen or replayed, so the whole family is revoked.

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use chrono::Utc;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub mod guard;

pub use guard::{Guard, Refused, StreamPermit};

use crate::{config::AuthConfig, domain::Role};

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    /// The role when issued; the guard uses the account's current one.
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// The account's token generation when issued (see [`guard`]); tokens from before this claim
    /// existed count as generation 0.
    #[serde(default, rename = "gen")]
    pub generation: i32,
    /// The session (refresh-token family) the token was issued with: revoking the family — a
    /// re-used refresh token, a log-out — ends its access tokens too (see [`guard`]).
    #[serde(default, rename = "fam", skip_serializing_if = "Option::is_none")]
    pub family: Option<Uuid>,
}

/// Keys and parameters, built once at start-up.
pub struct AuthKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    verified: VerifiedTokens,
    pub access_ttl: chrono::Duration,
    pub refresh_ttl: chrono::Duration,
    params: Params,
    /// A hash of a random password with the same parameters (see [`AuthKeys::verify_nobody`]).
    dummy_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
}

impl AuthKeys {
    pub fn new(cfg: &AuthConfig) -> anyhow::Result<Self> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let params = Params::new(cfg.argon2_memory_kib, cfg.argon2_iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let dummy_hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(crate::secrets::random_token(32).as_bytes(), &SaltString::generate(&mut OsRng))
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?
            .to_string();
        Ok(Self {
            dummy_hash,
            encoding: EncodingKey::from_secret(cfg.jwt_secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(cfg.jwt_secret.expose().as_bytes()),
            validation,
            verified: VerifiedTokens::default(),
            access_ttl: chrono::Duration::seconds(cfg.access_ttl_seconds as i64),
            refresh_ttl: chrono::Duration::seconds(cfg.refresh_ttl_seconds as i64),
            params,
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes on a blocking thread: argon2 is deliberately slow.
    pub async fn hash_password(&self, password: String) -> anyhow::Result<String> {
        let argon = self.argon2();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await?
    }

    /// Spends the time of a password check for a login that names no account, so that the
    /// answer time does not tell whether an account exists (a known login took 25 times longer).
    pub async fn verify_nobody(&self, password: String) {
        let hash = self.dummy_hash.clone();
        let _ = self.verify_password(password, hash).await;
    }

    pub async fn verify_password(&self, password: String, hash: String) -> bool {
        let argon = self.argon2();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .unwrap_or(false)
    }

    /// An access token of the session `family`.
    pub fn issue_access(&self, user_id: Uuid, role: Role, generation: i32, family: Uuid) -> anyhow::Result<String> {
        let now = Utc::now();
        let claims = Claims {
            sub: user_id,
            role,
            iat: now.timestamp(),
            exp: (now + self.access_ttl).timestamp(),
            jti: Uuid::new_v4(),
            generation,
            family: Some(family),
        };
        Ok(encode(&Header::default(), &claims, &self.encoding)?)
    }

    pub fn verify_access(&self, token: &str) -> Result<Claims, TokenError> {
        let now = Utc::now().timestamp();
        if let Some(claims) = self.verified.get(token, now) {
            return claims;
        }
        let claims =
            decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        self.verified.insert(token, &claims, now);
        Ok(claims)
    }

    /// Signs arbitrary claims; tests use it to forge expired tokens with the real key.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(encode(&Header::default(), claims, &self.encoding)?)
    }
}

/// Access tokens whose signature was already checked, until they expire.
///
/// A client sends the same token with every request until it expires, and checking an HS256
/// signature (base64, JSON, HMAC) was ~7 % of the server's CPU under a booking rush. A token is
/// immutable and the key never changes while the process runs, so a token verified once stays
/// valid until its `exp`, which is checked again on every hit, exactly as `jsonwebtoken` checks
/// it (no leeway). Only valid tokens are remembered; a forged token costs a full check each time.
/// Bounded: at the cap, expired entries are dropped, and if that is not enough, all of them.
#[derive(Default)]
struct VerifiedTokens(std::sync::Mutex<std::collections::HashMap<Box<str>, Claims>>);

impl VerifiedTokens {
    const CAP: usize = 100_000;

    fn get(&self, token: &str, now: i64) -> Option<Result<Claims, TokenError>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let claims = map.get(token)?;
        Some(if claims.exp < now { Err(TokenError::Expired) } else { Ok(claims.clone()) })
    }

    fn insert(&self, token: &str, claims: &Claims, now: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::CAP {
            map.retain(|_, c| c.exp >= now);
            if map.len() >= Self::CAP {
                map.clear();
            }
        }
        map.insert(token.into(), claims.clone());
    }
}

/// A fresh refresh token: what the client gets, and what is stored.
pub struct NewRefreshToken {
    pub id: Uuid,
    pub token: String,
    pub hash: String,
}

pub fn new_refresh_token() -> NewRefreshToken {
    let id = Uuid::now_v7();
    let secret = crate::secrets::random_token(32);
    NewRefreshToken { id, hash: sha256_hex(&secret), token: format!("{id}.{secret}") }
}

/// Splits a presented refresh token into its id and the hash of its secret.
pub fn parse_refresh_token(token: &str) -> Option<(Uuid, String)> {
    let (id, secret) = token.split_once('.')?;
    Some((Uuid::parse_str(id).ok()?, sha256_hex(secret)))
}

/// Whether two secrets are equal, in time that depends only on their lengths (both are hashed
/// first, so not even on those).
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AuthKeys {
        let cfg = AuthConfig { argon2_memory_kib: 64, argon2_iterations: 1, ..crate::Config::default().auth };
        AuthKeys::new(&cfg).unwrap()
    }

    #[tokio::test]
    async fn a_password_verifies_only_against_its_own_hash() {
        let k = keys();
        let hash = k.hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(k.verify_password("correct horse".into(), hash.clone()).await);
        assert!(!k.verify_password("wrong horse".into(), hash).await);
    }

    #[test]
    fn access_tokens_round_trip_and_expired_ones_are_told_apart() {
        let k = keys();
        let id = Uuid::now_v7();
        let t = k.issue_access(id, Role::User, 3, Uuid::now_v7()).unwrap();
        assert_eq!(k.verify_access(&t).unwrap().sub, id);
        assert_eq!(k.verify_access(&t).unwrap().generation, 3);
        let past = Claims {
            sub: id,
            role: Role::User,
            iat: 0,
            exp: Utc::now().timestamp() - 10,
            jti: Uuid::new_v4(),
            generation: 0,
            family: None,
        };
        assert!(matches!(k.verify_access(&k.sign(&past).unwrap()), Err(TokenError::Expired)));
        assert!(matches!(k.verify_access("not.a.jwt"), Err(TokenError::Invalid)));
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_tampered_copy_is_still_checked() {
        let k = keys();
        let id = Uuid::now_v7();
        let t = k.issue_access(id, Role::User, 0, Uuid::now_v7()).unwrap();
        let claims = k.verify_access(&t).unwrap();
        assert!(matches!(k.verified.get(&t, claims.exp), Some(Ok(_))), "valid up to and including exp");
        assert!(matches!(k.verified.get(&t, claims.exp + 1), Some(Err(TokenError::Expired))));
        let (rest, signature) = t.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let tampered = format!("{rest}.{flipped}{}", &signature[1..]);
        assert!(matches!(k.verify_access(&tampered), Err(TokenError::Invalid)));
    }

    #[test]
    fn refresh_tokens_parse_back_to_their_stored_hash() {
        let t = new_refresh_token();
        let (id, hash) = parse_refresh_token(&t.token).unwrap();
        assert_eq!((id, hash), (t.id, t.hash));
        assert!(parse_refresh_token("garbage").is_none());
    }
}
