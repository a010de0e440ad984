//! Bearer JWT identity (SPEC §9): verifying the token of every `/api/*` request, minting tokens
//! for local use (`metaengine token`), and the local HS256 secret kept in the data directory.
//!
//! Key decision: a [`Verifier`] accepts exactly one algorithm, the configured one, and reads the
//! token's header itself before any cryptography. So `alg: none` and the HS/RS confusion attack
//! (an HS256 token "signed" with the text of the RSA public key) are refused by name, never by the
//! accident of a key type. Every refusal is an [`AuthError`] whose message fits the detail of a
//! 401 problem and never contains the token.

mod secret;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use metaengine_runtime::Actor;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use secret::{AUDIT_KEY_FILE, SECRET_FILE, load_or_create_audit_key, load_or_create_secret};

/// Seconds a token is still accepted after its `exp` (clock skew between issuer and server).
pub const EXP_LEEWAY_SECS: u64 = 5;

/// The longest token accepted, in bytes; a longer one is malformed.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Most bytes of tokens and claims a [`Verifier`] remembers (each token weighs its text and its
/// claims' strings).
pub const VERIFIED_BYTES: u64 = 8 * 1024 * 1024;

/// How long a remembered token stays remembered without being used.
pub const VERIFIED_IDLE: Duration = Duration::from_secs(300);

/// HS256 secrets shorter than this (bytes) are accepted with a warning (RFC 7518 §3.2 asks for
/// at least the hash size).
pub const MIN_SECRET_LEN: usize = 32;

/// The claims of a metaengine token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Tenant of the user.
    pub tenant_id: String,
    /// Realm of the user (a free-form label).
    pub realm_id: String,
    /// Roles of the user (empty when the token has none).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

impl Claims {
    /// Claims issued now and valid for `ttl`.
    pub fn new(
        sub: impl Into<String>,
        tenant_id: impl Into<String>,
        realm_id: impl Into<String>,
        roles: Vec<String>,
        ttl: Duration,
    ) -> Self {
        let now = unix_now();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        Self {
            sub: sub.into(),
            tenant_id: tenant_id.into(),
            realm_id: realm_id.into(),
            roles,
            exp: now.saturating_add(ttl),
            iat: Some(now),
        }
    }

    /// The caller these claims describe, for the runtime's services.
    pub fn into_actor(self) -> Actor {
        Actor {
            user_id: self.sub,
            tenant_id: self.tenant_id,
            realm_id: self.realm_id,
            roles: self.roles,
        }
    }
}

impl From<Claims> for Actor {
    fn from(claims: Claims) -> Self {
        claims.into_actor()
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The key tokens are verified with, and so the one algorithm accepted.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A shared HS256 secret, used as its UTF-8 bytes (never base64-decoded).
    Hs256Secret(String),
    /// A PEM-encoded RSA public key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`): RS256.
    Rs256PublicPem(String),
    /// A PEM-encoded P-256 public key (`BEGIN PUBLIC KEY`): ES256.
    Es256PublicPem(String),
}

impl KeySource {
    /// The algorithm this key verifies: `HS256`, `RS256` or `ES256`.
    pub fn algorithm_name(&self) -> &'static str {
        match self {
            Self::Hs256Secret(_) => "HS256",
            Self::Rs256PublicPem(_) => "RS256",
            Self::Es256PublicPem(_) => "ES256",
        }
    }
}

/// Never prints the secret.
impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hs256Secret(s) => write!(f, "Hs256Secret([redacted, {} bytes])", s.len()),
            Self::Rs256PublicPem(p) => write!(f, "Rs256PublicPem([{} bytes of PEM])", p.len()),
            Self::Es256PublicPem(p) => write!(f, "Es256PublicPem([{} bytes of PEM])", p.len()),
        }
    }
}

/// Why a key could not be used to verify tokens (a configuration error, found at startup).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    /// The HS256 secret is empty.
    #[error(
        "the HS256 secret is empty; set `METAENGINE_JWT_SECRET` or unset it to use the data directory's secret"
    )]
    EmptySecret,
    /// A private key was given where the public key is expected.
    #[error(
        "the {alg} key is a private key; configure the public key (`openssl pkey -in key.pem -pubout`)"
    )]
    PrivateKey {
        /// `RS256` or `ES256`.
        alg: &'static str,
    },
    /// The PEM text is not a public key of the algorithm's kind.
    #[error("the {alg} key is not a PEM-encoded {kind} public key")]
    InvalidKey {
        /// `RS256` or `ES256`.
        alg: &'static str,
        /// `RSA` or `P-256`.
        kind: &'static str,
    },
}

/// Why a token was refused. Every variant answers 401; the message is fit for the problem's
/// `detail` and never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token came with the request (for the HTTP layer; `verify` never returns it).
    #[error("the request has no bearer token; send `Authorization: Bearer <token>`")]
    Missing,
    /// Not a JWT: wrong number of parts, bad base64, header or claims not JSON objects, too long.
    #[error("the token is malformed")]
    Malformed,
    /// The header names an algorithm other than the configured one (`none` included).
    #[error("the token's algorithm {} is not accepted (expected {expected})", alg_label(.found))]
    Algorithm {
        /// The header's `alg`, when it is a short plain name (`None` otherwise).
        found: Option<String>,
        /// The configured algorithm.
        expected: &'static str,
    },
    /// The signature does not match the header and claims.
    #[error("the token's signature is invalid")]
    Signature,
    /// `exp` is past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still in the future (beyond the leeway): RFC 7519 §4.1.5.
    #[error("the token is not valid yet (its `nbf` is in the future)")]
    NotYetValid,
    /// The header's `crit` names extensions this server does not understand: RFC 7515 §4.1.11.
    #[error(
        "the token's header names critical extensions (`crit`) this server does not understand"
    )]
    CriticalExtension,
    /// A required claim is absent.
    #[error("the token has no `{0}` claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or an empty value.
    #[error("the token's `{claim}` claim must be {expected}")]
    InvalidClaim {
        /// Claim name.
        claim: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The configured key could not verify anything (a server misconfiguration; logged).
    #[error("the token could not be verified")]
    Unverifiable,
    /// Minting failed.
    #[error("the token could not be signed")]
    Signing,
}

impl AuthError {
    /// A short stable code for logs, metrics and `auth.failure` audit details.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Algorithm { .. } => "algorithm",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::CriticalExtension => "critical_extension",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::Unverifiable => "unverifiable",
            Self::Signing => "signing",
        }
    }
}

fn alg_label(found: &Option<String>) -> String {
    match found {
        Some(alg) => format!("`{alg}`"),
        None => "in its header".to_owned(),
    }
}

/// Verifies bearer tokens with one configured key and algorithm. Cheap to share (`Arc`) between
/// requests; `verify` takes `&self`.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    algorithm: &'static str,
    /// The claims of tokens whose signature this verifier has checked, by token (see
    /// [`Verifier::verify`]).
    verified: moka::sync::Cache<String, Arc<Claims>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier accepting only the algorithm of `key`.
    pub fn new(key: &KeySource) -> Result<Self, AuthConfigError> {
        let alg = key.algorithm_name();
        let (decoding, algorithm) = match key {
            KeySource::Hs256Secret(secret) => {
                if secret.is_empty() {
                    return Err(AuthConfigError::EmptySecret);
                }
                if secret.len() < MIN_SECRET_LEN {
                    tracing::warn!(
                        bytes = secret.len(),
                        "the HS256 secret is shorter than {MIN_SECRET_LEN} bytes; use a longer one"
                    );
                }
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    Algorithm::HS256,
                )
            }
            KeySource::Rs256PublicPem(pem) => {
                reject_private(pem, alg)?;
                let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|_| AuthConfigError::InvalidKey { alg, kind: "RSA" })?;
                (key, Algorithm::RS256)
            }
            KeySource::Es256PublicPem(pem) => {
                reject_private(pem, alg)?;
                let key = DecodingKey::from_ec_pem(pem.as_bytes())
                    .map_err(|_| AuthConfigError::InvalidKey { alg, kind: "P-256" })?;
                (key, Algorithm::ES256)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = EXP_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // `exp` is required all the same: `RawClaims::into_claims` refuses a token without it,
        // naming the claim, where the library would call a malformed `exp` missing.
        validation.required_spec_claims.clear();
        // metaengine issues no audience; a token carrying one is not refused for it.
        validation.validate_aud = false;
        Ok(Self {
            key: decoding,
            validation,
            algorithm: alg,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_BYTES)
                .weigher(|token: &String, claims: &Arc<Claims>| {
                    let strings = [&claims.sub, &claims.tenant_id, &claims.realm_id]
                        .into_iter()
                        .chain(&claims.roles)
                        .map(|s| s.len() + 24)
                        .sum::<usize>();
                    u32::try_from(token.len() + strings + 64).unwrap_or(u32::MAX)
                })
                .time_to_idle(VERIFIED_IDLE)
                .build(),
        })
    }

    /// The one algorithm accepted: `HS256`, `RS256` or `ES256`.
    pub fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// Checks a token (without the `Bearer ` prefix): algorithm, signature, expiry, then the
    /// claims metaengine needs.
    ///
    /// A client sends the same token with every request until it expires, so the claims of a
    /// token that passed are remembered (at most [`VERIFIED_BYTES`] of them, each forgotten after
    /// [`VERIFIED_IDLE`] unused): the next request with that exact token skips the header, the
    /// signature and the claims' parsing, and only its expiry is checked again. A token that
    /// failed is never remembered, so only tokens signed with the configured key can fill it.
    /// PostgREST does the same (`jwt-cache-max-lifetime`).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_at(token, unix_now())
    }

    /// [`Verifier::verify`] with the expiry of a remembered token checked against `now`
    /// (seconds since the epoch); a token checked afresh is checked against the clock.
    fn verify_at(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        if let Some(claims) = self.verified.get(token) {
            // The same test as the library's: expired once `exp` is more than the leeway past.
            if claims.exp.saturating_add(EXP_LEEWAY_SECS as i64) < now {
                self.verified.invalidate(token);
                return Err(AuthError::Expired);
            }
            return Ok(Claims::clone(&claims));
        }
        let claims = self.verify_afresh(token)?;
        self.verified
            .insert(token.to_owned(), Arc::new(claims.clone()));
        Ok(claims)
    }

    /// The whole check of a token not remembered.
    fn verify_afresh(&self, token: &str) -> Result<Claims, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        let found = header_alg(token)?;
        if found != self.algorithm {
            return Err(AuthError::Algorithm {
                found: plain_alg_name(&found),
                expected: self.algorithm,
            });
        }
        let data = jsonwebtoken::decode::<RawClaims>(token, &self.key, &self.validation)
            .map_err(|e| self.map_error(e))?;
        data.claims.into_claims()
    }

    fn map_error(&self, e: jsonwebtoken::errors::Error) -> AuthError {
        match e.into_kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidSignature => AuthError::Signature,
            ErrorKind::MissingRequiredClaim(_) => AuthError::MissingClaim("exp"),
            ErrorKind::InvalidClaimFormat(_) => AuthError::InvalidClaim {
                claim: "exp",
                expected: "a number of seconds since the epoch",
            },
            ErrorKind::InvalidAlgorithm
            | ErrorKind::MissingAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::UnsupportedAlgorithm => AuthError::Algorithm {
                found: None,
                expected: self.algorithm,
            },
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => AuthError::Malformed,
            other => {
                tracing::error!(
                    algorithm = self.algorithm,
                    error = ?other,
                    "the configured key cannot verify tokens"
                );
                AuthError::Unverifiable
            }
        }
    }
}

/// Refuses PEM text holding a private key where a public key is expected.
fn reject_private(pem: &str, alg: &'static str) -> Result<(), AuthConfigError> {
    if pem.contains("PRIVATE KEY-----") {
        Err(AuthConfigError::PrivateKey { alg })
    } else {
        Ok(())
    }
}

/// The header's `alg`, read without trusting anything else in the token.
fn header_alg(token: &str) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct RawHeader<'a> {
        #[serde(borrow)]
        alg: Option<Cow<'a, str>>,
        #[serde(default)]
        crit: Option<Value>,
    }
    let (header, _) = token.split_once('.').ok_or(AuthError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    let raw: RawHeader<'_> = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    // No extension is understood, so any `crit` (even an empty or malformed one) is refused.
    if raw.crit.is_some() {
        return Err(AuthError::CriticalExtension);
    }
    raw.alg.map(Cow::into_owned).ok_or(AuthError::Malformed)
}

/// The algorithm name as the error may show it: short and plain, else not at all.
fn plain_alg_name(alg: &str) -> Option<String> {
    let plain = !alg.is_empty()
        && alg.len() <= 16
        && alg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then(|| alg.to_owned())
}

/// The claims as the token carries them, checked one by one for precise messages.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    tenant_id: Option<Value>,
    #[serde(default)]
    realm_id: Option<Value>,
    #[serde(default)]
    roles: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
}

impl RawClaims {
    fn into_claims(self) -> Result<Claims, AuthError> {
        const SECONDS: &str = "a number of seconds since the epoch";
        let roles = match self.roles {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(role) if !role.contains('\0') => Ok(role),
                    _ => Err(AuthError::InvalidClaim {
                        claim: "roles",
                        expected: "an array of strings without NUL characters",
                    }),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(AuthError::InvalidClaim {
                    claim: "roles",
                    expected: "an array of strings",
                });
            }
        };
        let exp = match self.exp {
            None | Some(Value::Null) => return Err(AuthError::MissingClaim("exp")),
            Some(v) => seconds(&v).ok_or(AuthError::InvalidClaim {
                claim: "exp",
                expected: SECONDS,
            })?,
        };
        let iat = match self.iat {
            None | Some(Value::Null) => None,
            Some(v) => Some(seconds(&v).ok_or(AuthError::InvalidClaim {
                claim: "iat",
                expected: SECONDS,
            })?),
        };
        Ok(Claims {
            sub: required_string(self.sub, "sub")?,
            tenant_id: required_string(self.tenant_id, "tenant_id")?,
            realm_id: required_string(self.realm_id, "realm_id")?,
            roles,
            exp,
            iat,
        })
    }
}

fn required_string(value: Option<Value>, claim: &'static str) -> Result<String, AuthError> {
    match value {
        None | Some(Value::Null) => Err(AuthError::MissingClaim(claim)),
        // A NUL character cannot be stored by PostgreSQL (and would poison every audit row the
        // caller causes): the claim is refused, on both backends alike.
        Some(Value::String(s)) if s.contains('\0') => Err(AuthError::InvalidClaim {
            claim,
            expected: "a string without NUL characters",
        }),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(AuthError::InvalidClaim {
            claim,
            expected: "a non-empty string",
        }),
    }
}

/// A NumericDate: an integer, or a finite number rounded.
fn seconds(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.is_finite() && f.abs() < 9.0e15)
            .map(|f| f.round() as i64)
    })
}

/// Signs `claims` with the HS256 `secret` (its UTF-8 bytes).
pub fn mint_hs256(secret: &str, claims: &Claims) -> Result<String, AuthError> {
    if secret.is_empty() {
        return Err(AuthError::Signing);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| {
        tracing::error!(error = %e, "cannot sign a token");
        AuthError::Signing
    })
}
