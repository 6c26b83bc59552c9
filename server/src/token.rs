//! Signed join tokens: HMAC-SHA256 over match id, seat, player name, expiry and the server
//! instance that signed them, with the server's secret. The matchmaker issues player tokens
//! and `POST /api/matches/{id}/spectate` spectator tokens; `/ws` checks them before the
//! upgrade. A restarted server has a new instance id and refuses older tokens (match ids and
//! seats are reused after a restart), unless the operator opts out.
//!
//! Format: `base64url(json claims) "." base64url(mac)`. The MAC is checked in constant time
//! (`Mac::verify_slice`) before the claims are parsed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a token grants: one seat in one match, for one name, until `exp` (or, for a
/// spectator token, watching the match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub match_id: u32,
    pub seat: u32,
    pub name: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// The server instance that signed it.
    pub instance: u64,
    /// A spectator token (no seat).
    #[serde(default)]
    pub spectator: bool,
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
    #[error("token from before a server restart")]
    OtherInstance,
}

/// Signs and verifies tokens with one secret, for one server instance.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
    /// Random per start: stamped into every token and checked.
    pub instance: u64,
    /// Accept tokens of other instances (`--token-survives-restart`).
    pub any_instance: bool,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

impl TokenSigner {
    /// A signer with `secret` and a random instance id.
    pub fn new(secret: &[u8]) -> Result<Self, getrandom::Error> {
        let mut instance = [0u8; 8];
        getrandom::fill(&mut instance)?;
        Ok(Self {
            key: secret.to_vec(),
            instance: u64::from_le_bytes(instance),
            any_instance: false,
        })
    }

    /// A signer with 32 random bytes of secret.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key)?;
        Self::new(&key)
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    /// The key datagram connect tokens are sealed with, derived from the same secret (so a
    /// fixed `--secret` gives the same key after a restart).
    #[must_use]
    pub fn datagram_key(&self) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(b"skirmish datagram connect-token key v1");
        mac.finalize().into_bytes().into()
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
        if claims.instance != self.instance && !self.any_instance {
            return Err(TokenError::OtherInstance);
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
            instance: 42,
            spectator: false,
        }
    }

    fn signer(secret: &[u8]) -> TokenSigner {
        let mut s = TokenSigner::new(secret).expect("random");
        s.instance = 42;
        s
    }

    #[test]
    fn a_restarted_server_refuses_older_tokens_unless_told_otherwise() {
        let before = signer(b"fixed secret");
        let t = before.sign(&claims());
        let mut after = TokenSigner::new(b"fixed secret").expect("random");
        assert_ne!(
            after.instance, before.instance,
            "a new instance id per start"
        );
        assert_eq!(after.verify(&t, 1), Err(TokenError::OtherInstance));
        after.any_instance = true;
        assert_eq!(after.verify(&t, 1), Ok(claims()));
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = signer(b"secret");
        let t = s.sign(&claims());
        assert_eq!(s.verify(&t, 999), Ok(claims()));
        assert_eq!(s.verify(&t, 1000), Err(TokenError::Expired));
        assert_eq!(
            signer(b"other").verify(&t, 1),
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
