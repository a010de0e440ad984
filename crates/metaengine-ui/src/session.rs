//! Who is signed in: the session cookie, its CSRF token and the one-time sign-in codes.
//!
//! Key decision: the session is a signed cookie, not a row anywhere. It holds the identity (the
//! same fields as a token's claims), an expiry and a random session id, signed with
//! HMAC-SHA256 under a key derived from the audit key, so every instance that shares the audit
//! key accepts it and a restart keeps people signed in. The CSRF token of a session is an HMAC of
//! its id under the same key: nothing to store, and a token is good for one session only.
//! One-time sign-in codes are the exception: they live in the memory of the process that printed
//! them (a code is used once, within ten minutes, on the instance whose log shows it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use metaengine_runtime::Actor;
pub use metaengine_server::auth::unix_now;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "metaengine_session";

/// The cookie that carries the sign-in form's nonce before anyone is signed in.
pub const LOGIN_COOKIE: &str = "metaengine_login";

/// How long a session lasts at most (a pasted token's own expiry may end it sooner).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// How long a printed sign-in code is valid.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);

/// A signed-in person: the identity every page acts as, until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// User id.
    pub sub: String,
    /// Tenant.
    pub tenant: String,
    /// Realm.
    pub realm: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Random id of this sign-in (what the CSRF token is derived from).
    pub sid: String,
}

impl Session {
    /// A session for `actor` ending at `exp` (seconds since the epoch).
    pub fn new(actor: &Actor, exp: i64) -> Self {
        Self {
            sub: actor.user_id.clone(),
            tenant: actor.tenant_id.clone(),
            realm: actor.realm_id.clone(),
            roles: actor.roles.clone(),
            exp,
            sid: random_token(),
        }
    }

    /// The caller the services see.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.sub.clone(),
            tenant_id: self.tenant.clone(),
            realm_id: self.realm.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// Why a cookie does not stand for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// No cookie, or one that was not signed by us.
    Missing,
    /// A genuine session that has ended.
    Expired,
}

/// The signing key of sessions and CSRF tokens.
#[derive(Clone)]
pub struct Keys {
    key: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// Derives the UI's key from `secret` (the audit key): HMAC-SHA256(secret, label), so the
    /// UI never signs with the audit key itself.
    pub fn derive(secret: &[u8]) -> Self {
        Self {
            key: mac(secret, &[b"metaengine admin ui session v1"]),
        }
    }

    /// The cookie value of `session`: `base64(json).base64(mac)`.
    pub fn seal(&self, session: &Session) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(session).unwrap_or_default());
        let tag = URL_SAFE_NO_PAD.encode(mac(&self.key, &[b"session:", payload.as_bytes()]));
        format!("{payload}.{tag}")
    }

    /// The session a cookie value stands for at `now` (seconds since the epoch).
    pub fn open(&self, value: &str, now: i64) -> Result<Session, SessionError> {
        let (payload, tag) = value.split_once('.').ok_or(SessionError::Missing)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SessionError::Missing)?;
        let mut check =
            Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| SessionError::Missing)?;
        check.update(b"session:");
        check.update(payload.as_bytes());
        check
            .verify_slice(&tag)
            .map_err(|_| SessionError::Missing)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| SessionError::Missing)?;
        let session: Session = serde_json::from_slice(&bytes).map_err(|_| SessionError::Missing)?;
        if session.exp <= now {
            return Err(SessionError::Expired);
        }
        Ok(session)
    }

    /// The CSRF token of a session id (or of a sign-in form's nonce).
    pub fn csrf(&self, sid: &str) -> String {
        URL_SAFE_NO_PAD.encode(mac(&self.key, &[b"csrf:", sid.as_bytes()]))
    }

    /// Whether `token` is the CSRF token of `sid` (constant time).
    pub fn csrf_matches(&self, sid: &str, token: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        let Ok(mut check) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return false;
        };
        check.update(b"csrf:");
        check.update(sid.as_bytes());
        check.verify_slice(&tag).is_ok()
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return [0; 32],
    };
    for part in parts {
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

/// 32 random bytes, base64url: session ids, sign-in codes, form nonces.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness from the OS: fall back on a v4 UUID's (the uuid crate's generator).
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        let (c, d) = uuid::Uuid::new_v4().as_u64_pair();
        for (chunk, n) in bytes.chunks_mut(8).zip([a, b, c, d]) {
            chunk.copy_from_slice(&n.to_le_bytes());
        }
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The one-time sign-in codes this process printed: each usable once, within [`CODE_TTL`].
/// Kept as SHA-256 digests, so the memory of the process does not hold a usable code either.
#[derive(Debug, Default)]
pub struct LoginCodes {
    codes: Mutex<HashMap<[u8; 32], Instant>>,
}

impl LoginCodes {
    /// A new code, valid for [`CODE_TTL`].
    pub fn issue(&self) -> String {
        let code = random_token();
        if let Ok(mut codes) = self.codes.lock() {
            let now = Instant::now();
            codes.retain(|_, until| *until > now);
            codes.insert(Sha256::digest(code.as_bytes()).into(), now + CODE_TTL);
        }
        code
    }

    /// Uses `code`: `true` once for a code issued less than [`CODE_TTL`] ago, then never again.
    pub fn redeem(&self, code: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(code.as_bytes()).into();
        self.codes
            .lock()
            .ok()
            .and_then(|mut codes| codes.remove(&digest))
            .is_some_and(|until| until > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            user_id: "ann".into(),
            tenant_id: "acme".into(),
            realm_id: "eu".into(),
            roles: vec!["admin".into()],
        }
    }

    #[test]
    fn a_sealed_session_opens_until_it_expires() {
        let keys = Keys::derive(b"audit key");
        let session = Session::new(&actor(), 1_000);
        let cookie = keys.seal(&session);
        assert_eq!(keys.open(&cookie, 999).unwrap(), session);
        assert_eq!(keys.open(&cookie, 1_000), Err(SessionError::Expired));
    }

    #[test]
    fn a_changed_or_foreign_cookie_is_refused() {
        let keys = Keys::derive(b"audit key");
        let cookie = keys.seal(&Session::new(&actor(), 1_000));
        let other = Keys::derive(b"another key");
        assert_eq!(other.open(&cookie, 0), Err(SessionError::Missing));
        // Claiming another tenant with the old tag.
        let (_, tag) = cookie.split_once('.').unwrap();
        let mut forged = Session::new(&actor(), 1_000);
        forged.tenant = "other".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            keys.open(&format!("{payload}.{tag}"), 0),
            Err(SessionError::Missing)
        );
        assert_eq!(keys.open("garbage", 0), Err(SessionError::Missing));
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let keys = Keys::derive(b"audit key");
        let token = keys.csrf("sid-1");
        assert!(keys.csrf_matches("sid-1", &token));
        assert!(!keys.csrf_matches("sid-2", &token));
        assert!(!keys.csrf_matches("sid-1", "not base64 !"));
    }

    #[test]
    fn a_code_is_good_once() {
        let codes = LoginCodes::default();
        let code = codes.issue();
        assert!(!codes.redeem("made-up"));
        assert!(codes.redeem(&code));
        assert!(!codes.redeem(&code));
    }
}
