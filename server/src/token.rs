//! Signed join tokens: HMAC-SHA256 over match id, seat, player name and expiry, with the
//! server's secret. The matchmaker issues them; `/ws` checks them before the upgrade.
//!
//! Format: `base64url(json claims) "." base64url(mac)`. The MAC is checked in constant time
//! (`Mac::verify_slice`) before the claims are parsed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a token grants: one seat in one match, for one name, until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub match_id: u32,
    pub seat: u32,
    pub name: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("forged token: bad signature")]
    BadSignature,
    #[error("expired token")]
    Expired,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

impl TokenSigner {
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: secret.to_vec(),
        }
    }

    /// A signer with 32 random bytes of secret.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(Self { key })
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    #[must_use]
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        format!("{payload}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// Checks signature then expiry against `now_unix_s`.
    pub fn verify(&self, token: &str, now_unix_s: u64) -> Result<Claims, TokenError> {
        let (payload, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let json = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now_unix_s {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Seconds since the Unix epoch.
#[must_use]
pub fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            match_id: 3,
            seat: 7,
            name: "alice".into(),
            exp: 1000,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = TokenSigner::new(b"secret");
        let t = s.sign(&claims());
        assert_eq!(s.verify(&t, 999), Ok(claims()));
        assert_eq!(s.verify(&t, 1000), Err(TokenError::Expired));
        assert_eq!(
            TokenSigner::new(b"other").verify(&t, 1),
            Err(TokenError::BadSignature)
        );
        // Changing the claims without re-signing is caught by the MAC.
        let (_, sig) = t.split_once('.').expect("dot");
        let mut forged = claims();
        forged.seat = 8;
        let forged = format!(
            "{}.{sig}",
            B64.encode(serde_json::to_vec(&forged).expect("json"))
        );
        assert_eq!(s.verify(&forged, 1), Err(TokenError::BadSignature));
        assert_eq!(s.verify("nodot", 1), Err(TokenError::Malformed));
        assert_eq!(s.verify("a.!!", 1), Err(TokenError::Malformed));
    }
}
