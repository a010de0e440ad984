//! The server's settings (SPEC §9, §11): one [`Settings`] layer per source — command-line flags,
//! `METAENGINE_*` environment variables, an optional TOML file — merged with [`Settings::or`]
//! (flags over environment over file) and resolved into a [`ServerConfig`] with the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use metaengine_runtime::{AccessConfig, RealtimeConfig};
use metaengine_store::PageRequest;
use serde::Deserialize;

pub use crate::connections::ConnectionLimits;

/// A secret value (the HS256 secret): used as given, never printed (`Debug` says `[redacted]`).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (an empty secret counts as none).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A database or Redis URL as it may be printed: the password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let (head, rest) = url.split_at(scheme + 3);
            let (credentials, tail) = rest.split_at(at - scheme - 3);
            match credentials.split_once(':') {
                Some((user, _)) => format!("{head}{user}:***{tail}"),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// One layer of settings; every key is optional. The TOML file uses the same names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on (default `127.0.0.1:8080`).
    pub listen: Option<String>,
    /// Database URL (default `sqlite://<data_dir>/metaengine.db`).
    pub database_url: Option<String>,
    /// Directory of the default SQLite database and the generated JWT secret.
    pub data_dir: Option<PathBuf>,
    /// Connections in the database pool.
    pub pool_size: Option<u32>,
    /// HS256 secret (its UTF-8 bytes); when unset, one is created in the data directory.
    pub jwt_secret: Option<Secret>,
    /// `HS256` (default), `RS256` or `ES256`.
    pub jwt_algorithm: Option<String>,
    /// PEM file of the public key for RS256/ES256.
    pub jwt_public_key_file: Option<PathBuf>,
    /// Redis URL of the shared compiled-model cache.
    pub redis_url: Option<String>,
    /// The admin role (default `admin`).
    pub admin_role: Option<String>,
    /// The tenant whose admins change metadata (default `default`).
    pub platform_tenant: Option<String>,
    /// Largest request body in bytes (default 1 MiB).
    pub body_limit: Option<usize>,
    /// Deepest nesting of a JSON body (default 32).
    pub json_max_depth: Option<usize>,
    /// Page size of a list without `pageSize` (default 20).
    pub default_page_size: Option<u32>,
    /// Largest page size (default 100).
    pub max_page_size: Option<u32>,
    /// Most filters in one list (default 20).
    pub max_filters: Option<usize>,
    /// Most bytes of records in one list page; a page ends early, with its `nextCursor`
    /// (default 4 MiB).
    pub max_page_bytes: Option<usize>,
    /// Most operations in one `POST /api/data/batch` (default 1,000).
    pub batch_max_operations: Option<usize>,
    /// Longest time a request may take, in milliseconds (default 30 000).
    pub request_timeout_ms: Option<u64>,
    /// Most requests served at once; more are answered 429 (default 1024).
    pub max_concurrency: Option<usize>,
    /// Most connections open at once; more wait in the kernel's backlog (default 4,096, fewer
    /// when the descriptor limit is lower).
    pub max_connections: Option<usize>,
    /// Longest time a client may take to send a request head, also between kept-alive requests,
    /// in milliseconds (default 10 000).
    pub header_read_timeout_ms: Option<u64>,
    /// Longest time a connection may move no byte while no request is handled, in milliseconds
    /// (default 60 000).
    pub idle_timeout_ms: Option<u64>,
    /// Longest time shutdown waits for in-flight requests before cutting them, in milliseconds
    /// (default 10 000).
    pub shutdown_grace_ms: Option<u64>,
    /// Compile every active entity before accepting requests (default true).
    pub precompile_on_startup: Option<bool>,
    /// Also audit allowed policy decisions (default false: denials only).
    pub audit_allows: Option<bool>,
    /// Most realtime subscribers on this instance; more are answered 503 (default 10,000).
    pub realtime_max_subscribers: Option<usize>,
    /// How long changes are kept for realtime subscribers to resume: a number with a unit,
    /// `s`, `m`, `h` or `d` (default `24h`).
    pub realtime_retention: Option<String>,
    /// Days audit rows are kept; older ones are purged hourly (default 90; 0 keeps everything).
    pub audit_retention_days: Option<u32>,
    /// Key of the seals of audit rows not chained yet (SPEC §16); when unset, the data
    /// directory's `audit-key` file (created on first use). Every instance on one database needs
    /// the same key.
    pub audit_key: Option<Secret>,
}

macro_rules! merge {
    ($upper:ident, $lower:ident; $($field:ident),* $(,)?) => {
        Settings { $( $field: $upper.$field.or($lower.$field) ),* }
    };
}

impl Settings {
    /// This layer over `lower`: each key set here wins.
    pub fn or(self, lower: Settings) -> Settings {
        merge!(self, lower; listen, database_url, data_dir, pool_size, jwt_secret, jwt_algorithm,
            jwt_public_key_file, redis_url, admin_role, platform_tenant, body_limit,
            json_max_depth, default_page_size, max_page_size, max_filters, max_page_bytes, batch_max_operations, request_timeout_ms,
            max_concurrency, max_connections, header_read_timeout_ms, idle_timeout_ms,
            shutdown_grace_ms, precompile_on_startup, audit_allows, realtime_max_subscribers,
            realtime_retention, audit_retention_days, audit_key)
    }

    /// Reads a TOML file of settings.
    pub fn from_toml_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file cannot be read or parsed.
    #[error("cannot read the configuration file {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A value is out of its range or malformed.
    #[error("invalid setting `{key}`: {message}")]
    Invalid {
        /// The setting's name.
        key: &'static str,
        /// Why.
        message: String,
    },
}

/// Which key verifies tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeyConfig {
    /// HS256 with this secret, or with the one in the data directory when `None`.
    Hs256(Option<Secret>),
    /// RS256 with the public key in this PEM file.
    Rs256(PathBuf),
    /// ES256 with the public key in this PEM file.
    Es256(PathBuf),
}

/// Limits of SPEC §11.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body in bytes.
    pub body_limit: usize,
    /// Deepest nesting of a JSON body.
    pub json_max_depth: usize,
    /// Page size of a list without `pageSize`.
    pub default_page_size: u32,
    /// Largest page size.
    pub max_page_size: u32,
    /// Most filters in one list.
    pub max_filters: usize,
    /// Most bytes of records in one list page.
    pub max_page_bytes: usize,
    /// Most operations in one batch.
    pub batch_max_operations: usize,
    /// Longest time a request may take.
    pub request_timeout: Duration,
    /// Most requests served at once.
    pub max_concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            json_max_depth: 32,
            default_page_size: PageRequest::DEFAULT_SIZE,
            max_page_size: PageRequest::MAX_SIZE,
            max_filters: 20,
            max_page_bytes: metaengine_runtime::DEFAULT_MAX_PAGE_BYTES,
            batch_max_operations: 1000,
            request_timeout: Duration::from_secs(30),
            max_concurrency: 1024,
        }
    }
}

/// The settings in force, defaults applied and values checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Database URL.
    pub database_url: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Connections in the database pool (`None`: the store's default).
    pub pool_size: Option<u32>,
    /// Token verification key.
    pub jwt: JwtKeyConfig,
    /// Redis URL of the shared cache.
    pub redis_url: Option<String>,
    /// The admin role.
    pub admin_role: String,
    /// The platform tenant.
    pub platform_tenant: String,
    /// Request limits.
    pub limits: Limits,
    /// Connection limits.
    pub connections: ConnectionLimits,
    /// Compile every active entity before accepting requests.
    pub precompile_on_startup: bool,
    /// Audit allowed policy decisions too.
    pub audit_allows: bool,
    /// The realtime feed's limits.
    pub realtime: RealtimeConfig,
    /// Days audit rows are kept (0: forever).
    pub audit_retention_days: u32,
    /// The configured audit key; `None`: the data directory's.
    pub audit_key: Option<Secret>,
}

/// Days audit rows are kept unless configured (SPEC §8).
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 90;

/// A duration written as a number and a unit (`90s`, `30m`, `24h`, `7d`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(seconds).map(Duration::from_secs)
}

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./metaengine-data";

fn positive<T: PartialOrd + Default + Copy>(
    key: &'static str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        Some(v) if v <= T::default() => Err(ConfigError::Invalid {
            key,
            message: "must be greater than 0".to_owned(),
        }),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

impl ServerConfig {
    /// Resolves merged settings: defaults for what is unset, every value checked.
    pub fn resolve(s: Settings) -> Result<ServerConfig, ConfigError> {
        let listen_text = s.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().map_err(|_| ConfigError::Invalid {
            key: "listen",
            message: format!("`{listen_text}` is not an address such as 127.0.0.1:8080"),
        })?;
        let data_dir = s
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = s
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("metaengine.db").display()));
        let algorithm = s.jwt_algorithm.unwrap_or_else(|| "HS256".to_owned());
        let key_file = |alg: &str| {
            s.jwt_public_key_file
                .clone()
                .ok_or_else(|| ConfigError::Invalid {
                    key: "jwt_public_key_file",
                    message: format!("{alg} needs the PEM file of the public key"),
                })
        };
        let jwt = match algorithm.to_ascii_uppercase().as_str() {
            "HS256" => JwtKeyConfig::Hs256(s.jwt_secret.filter(|secret| !secret.is_empty())),
            "RS256" => JwtKeyConfig::Rs256(key_file("RS256")?),
            "ES256" => JwtKeyConfig::Es256(key_file("ES256")?),
            other => {
                return Err(ConfigError::Invalid {
                    key: "jwt_algorithm",
                    message: format!("`{other}` is not one of HS256, RS256, ES256"),
                });
            }
        };
        let defaults = Limits::default();
        let limits = Limits {
            body_limit: positive("body_limit", s.body_limit, defaults.body_limit)?,
            json_max_depth: positive("json_max_depth", s.json_max_depth, defaults.json_max_depth)?,
            default_page_size: positive(
                "default_page_size",
                s.default_page_size,
                defaults.default_page_size,
            )?,
            max_page_size: positive("max_page_size", s.max_page_size, defaults.max_page_size)?,
            max_filters: positive("max_filters", s.max_filters, defaults.max_filters)?,
            max_page_bytes: positive("max_page_bytes", s.max_page_bytes, defaults.max_page_bytes)?,
            batch_max_operations: positive(
                "batch_max_operations",
                s.batch_max_operations,
                defaults.batch_max_operations,
            )?,
            request_timeout: Duration::from_millis(positive(
                "request_timeout_ms",
                s.request_timeout_ms,
                30_000,
            )?),
            max_concurrency: positive(
                "max_concurrency",
                s.max_concurrency,
                defaults.max_concurrency,
            )?,
        };
        let conn_defaults = ConnectionLimits::default();
        let millis = |key, value, default: Duration| -> Result<Duration, ConfigError> {
            let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
            Ok(Duration::from_millis(positive(key, value, default)?))
        };
        let connections = ConnectionLimits {
            max_connections: positive(
                "max_connections",
                s.max_connections,
                conn_defaults.max_connections,
            )?,
            header_read_timeout: millis(
                "header_read_timeout_ms",
                s.header_read_timeout_ms,
                conn_defaults.header_read_timeout,
            )?,
            idle_timeout: millis(
                "idle_timeout_ms",
                s.idle_timeout_ms,
                conn_defaults.idle_timeout,
            )?,
            shutdown_grace: millis(
                "shutdown_grace_ms",
                s.shutdown_grace_ms,
                conn_defaults.shutdown_grace,
            )?,
        };
        let realtime_defaults = RealtimeConfig::default();
        let realtime = RealtimeConfig {
            max_subscribers: positive(
                "realtime_max_subscribers",
                s.realtime_max_subscribers,
                realtime_defaults.max_subscribers,
            )?,
            retention: match s.realtime_retention.as_deref() {
                None => realtime_defaults.retention,
                Some(text) => parse_duration(text)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| ConfigError::Invalid {
                        key: "realtime_retention",
                        message: format!("`{text}` is not a duration such as `24h`, `90m` or `7d`"),
                    })?,
            },
            ..realtime_defaults
        };
        if limits.default_page_size > limits.max_page_size {
            return Err(ConfigError::Invalid {
                key: "default_page_size",
                message: format!("must not exceed max_page_size ({})", limits.max_page_size),
            });
        }
        Ok(ServerConfig {
            listen,
            database_url,
            data_dir,
            pool_size: s.pool_size.filter(|n| *n > 0),
            jwt,
            redis_url: s.redis_url.filter(|url| !url.is_empty()),
            admin_role: s
                .admin_role
                .unwrap_or_else(|| AccessConfig::DEFAULT_ADMIN_ROLE.to_owned()),
            platform_tenant: s
                .platform_tenant
                .unwrap_or_else(|| AccessConfig::DEFAULT_PLATFORM_TENANT.to_owned()),
            limits,
            connections,
            precompile_on_startup: s.precompile_on_startup.unwrap_or(true),
            audit_allows: s.audit_allows.unwrap_or(false),
            realtime,
            audit_retention_days: s
                .audit_retention_days
                .unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS),
            audit_key: s.audit_key.filter(|key| !key.is_empty()),
        })
    }

    /// The settings as startup prints them (no secrets).
    pub fn summary(&self) -> Vec<(&'static str, String)> {
        let l = &self.limits;
        let c = &self.connections;
        vec![
            ("listen", self.listen.to_string()),
            ("data dir", self.data_dir.display().to_string()),
            (
                "jwt",
                match &self.jwt {
                    JwtKeyConfig::Hs256(Some(_)) => "HS256 (secret from configuration)".to_owned(),
                    JwtKeyConfig::Hs256(None) => "HS256 (secret in the data directory)".to_owned(),
                    JwtKeyConfig::Rs256(p) => format!("RS256 ({})", p.display()),
                    JwtKeyConfig::Es256(p) => format!("ES256 ({})", p.display()),
                },
            ),
            (
                "redis",
                self.redis_url
                    .as_deref()
                    .map_or_else(|| "off".to_owned(), redact_url),
            ),
            ("body limit", format!("{} bytes", l.body_limit)),
            ("json depth", l.json_max_depth.to_string()),
            (
                "page size",
                format!(
                    "default {}, max {} records or {} bytes",
                    l.default_page_size, l.max_page_size, l.max_page_bytes
                ),
            ),
            ("filters", format!("max {}", l.max_filters)),
            (
                "batch",
                format!("max {} operations", l.batch_max_operations),
            ),
            (
                "request timeout",
                format!("{} ms", l.request_timeout.as_millis()),
            ),
            ("concurrency", format!("max {}", l.max_concurrency)),
            (
                "realtime",
                format!(
                    "max {} subscribers, changes kept {} s",
                    self.realtime.max_subscribers,
                    self.realtime.retention.as_secs()
                ),
            ),
            (
                "audit retention",
                match self.audit_retention_days {
                    0 => "forever".to_owned(),
                    days => format!("{days} days, purged hourly"),
                },
            ),
            (
                "audit key",
                match &self.audit_key {
                    Some(_) => "from configuration".to_owned(),
                    None => "in the data directory".to_owned(),
                },
            ),
            (
                "connections",
                format!(
                    "max {}, header timeout {} ms, idle timeout {} ms, shutdown grace {} ms",
                    c.max_connections,
                    c.header_read_timeout.as_millis(),
                    c.idle_timeout.as_millis(),
                    c.shutdown_grace.as_millis()
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_and_passwords_are_never_printed() {
        let settings = Settings {
            jwt_secret: Some("s3cr3t-value".into()),
            audit_key: Some("k3y-value".into()),
            ..Settings::default()
        };
        assert!(!format!("{settings:?}").contains("s3cr3t"));
        assert!(!format!("{settings:?}").contains("k3y"));
        let config = ServerConfig::resolve(settings).unwrap();
        let shown = format!("{config:?} {:?}", config.summary());
        assert!(
            !shown.contains("k3y") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        let jwt = JwtKeyConfig::Hs256(Some("s3cr3t-value".into()));
        assert!(!format!("{jwt:?}").contains("s3cr3t"));
        assert_eq!(
            redact_url("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact_url("postgres://bob:secret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(redact_url("sqlite://./a.db"), "sqlite://./a.db");
    }

    use super::*;

    #[test]
    fn upper_layers_win_and_defaults_fill_the_rest() {
        let flags = Settings {
            listen: Some("0.0.0.0:9000".into()),
            ..Settings::default()
        };
        let file: Settings = toml::from_str(
            "listen = \"127.0.0.1:1\"\nmax_page_size = 50\ndata_dir = \"/var/lib/me\"",
        )
        .unwrap();
        let config = ServerConfig::resolve(flags.or(file)).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.limits.max_page_size, 50);
        assert_eq!(config.database_url, "sqlite:///var/lib/me/metaengine.db");
        assert_eq!(config.limits.body_limit, 1024 * 1024);
        assert_eq!(config.jwt, JwtKeyConfig::Hs256(None));
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = ServerConfig::resolve(Settings {
            max_page_size: Some(0),
            ..Settings::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("max_page_size"), "{e}");
        let e = ServerConfig::resolve(Settings {
            jwt_algorithm: Some("RS256".into()),
            ..Settings::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("jwt_public_key_file"), "{e}");
        let e = toml::from_str::<Settings>("lisen = 1").unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
    }
}
