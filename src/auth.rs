//! Access tokens and operator passwords.
//!
//! Tokens are signed, not stored: `c.<id>.<issued>.<mac>` for a customer, `o.…` for an operator,
//! with an HMAC-SHA256 over the rest. Checking one costs no database round trip, which matters on
//! the long-poll path where every cycle re-authenticates. The key lives in the database so every
//! node of a cluster accepts every other node's tokens. Operator tokens expire; guest customer
//! tokens are the customer's only credential and do not.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::domain::Principal;

/// How long an operator's login stays valid.
const OPERATOR_TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;

/// Signs and verifies access tokens with the cluster-wide key.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl TokenSigner {
    pub fn new(key: &[u8]) -> Self {
        TokenSigner { key: key.to_vec() }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        mac
    }

    /// A signature of `payload` (for links such as unsubscribe, which need no login).
    pub fn sign(&self, payload: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(&format!("link:{payload}")).finalize().into_bytes())
    }

    /// Does `signature` sign `payload`? Compared in constant time.
    pub fn verify_signature(&self, payload: &str, signature: &str) -> bool {
        URL_SAFE_NO_PAD.decode(signature).is_ok_and(|sig| {
            self.mac(&format!("link:{payload}"))
                .verify_slice(&sig)
                .is_ok()
        })
    }

    /// A token for `principal`, issued at `now_secs`.
    pub fn issue(&self, principal: Principal, now_secs: i64) -> String {
        let payload = format!("{}.{}.{}", principal.kind_tag(), principal.id(), now_secs);
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The principal a token names, if the signature holds and it has not expired.
    pub fn verify(&self, token: &str, now_secs: i64) -> Option<Principal> {
        let (payload, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // `verify_slice` compares in constant time.
        self.mac(payload).verify_slice(&signature).ok()?;
        let mut parts = payload.splitn(3, '.');
        let (kind, id, issued) = (parts.next()?, parts.next()?, parts.next()?);
        let id: i64 = id.parse().ok()?;
        let issued: i64 = issued.parse().ok()?;
        match kind {
            "c" => Some(Principal::Customer { id }),
            "o" if now_secs - issued <= OPERATOR_TOKEN_TTL_SECS => Some(Principal::Operator { id }),
            _ => None,
        }
    }
}

/// A random URL-safe secret of `bytes` random bytes.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Compare two secrets without leaking where they differ through timing.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// Hash a password with Argon2id and a random salt (PHC string format). CPU-heavy: call it from
/// the blocking pool.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

/// Check a password against a stored hash. CPU-heavy: call it from the blocking pool.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A valid hash of a throwaway password, verified against when the e-mail is unknown so that a
/// failed login takes the same time whether or not the account exists.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not-a-real-password").expect("hashing a constant works"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let signer = TokenSigner::new(b"key-one");
        let token = signer.issue(Principal::Customer { id: 42 }, 1_000);
        assert_eq!(
            signer.verify(&token, 2_000),
            Some(Principal::Customer { id: 42 })
        );
        let forged = token.replacen("c.42", "c.43", 1);
        assert_eq!(signer.verify(&forged, 2_000), None);
        assert_eq!(TokenSigner::new(b"key-two").verify(&token, 2_000), None);
        assert_eq!(signer.verify("garbage", 2_000), None);
        assert_eq!(signer.verify("", 2_000), None);
    }

    #[test]
    fn operator_tokens_expire() {
        let signer = TokenSigner::new(b"k");
        let token = signer.issue(Principal::Operator { id: 7 }, 0);
        assert_eq!(
            signer.verify(&token, 3600),
            Some(Principal::Operator { id: 7 })
        );
        assert_eq!(signer.verify(&token, OPERATOR_TOKEN_TTL_SECS + 1), None);
    }

    #[test]
    fn passwords_verify_only_with_the_right_one() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn secrets_compare() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "abcd"));
    }
}
