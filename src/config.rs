//! Typed, layered configuration.
//!
//! Layers, later wins: the built-in defaults, which are the shipped `config.toml` compiled into
//! the binary ([`DEFAULTS`]: the embedded mode, every key commented there and nowhere else), then
//! the `config.toml` found at run time (path from `--config`, default `config.toml`, optional),
//! then environment variables `BOXOFFICE_<SECTION>__<KEY>`. [`Config::validate`] runs before anything starts so a bad value
//! stops the process with a message that names the key.
//!
//! Environment values are read verbatim as strings ([`StringEnv`]) and converted only where the
//! key's type asks for it (`extract_lossy`): figment's own `Env` guesses a type from the text, so an
//! all-digit password or a secret starting with `[` became a number or an array and failed to load.
//!
//! Secrets (passwords, the JWT key, URLs that may carry credentials) are [`Secret`]s: their `Debug`
//! prints nothing of them, so a logged config or error never shows one.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use figment::{
    Figment, Metadata, Profile, Provider,
    providers::{Env, Format, Toml},
    value::{Dict, Map, Value},
};
use serde::Deserialize;

use crate::domain::MAX_PER_PERSON;

/// The built-in defaults: the shipped `config.toml`, compiled in as the first layer.
pub const DEFAULTS: &str = include_str!("../config.toml");

/// A value that must not be printed: `Debug` shows `Secret(***)`, and reading it takes an explicit
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub booking: BookingConfig,
    pub payment: PaymentConfig,
    pub mail: MailConfig,
    pub kafka: KafkaConfig,
    pub mongodb: MongoConfig,
    pub seed: SeedConfig,
    pub compat: CompatConfig,
    pub grpc: GrpcConfig,
    pub log: LogConfig,
    pub cluster: ClusterConfig,
    pub runtime: RuntimeConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free port (tests).
    pub addr: SocketAddr,
    /// Requests slower than this answer 503.
    pub request_timeout_ms: u64,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// A request head must arrive within this long (see `http::serve`).
    pub header_timeout_ms: u64,
    /// Shutdown finishes within this long.
    pub shutdown_timeout_ms: u64,
    /// Empty: `/metrics` is open; set: it requires this bearer token.
    pub metrics_token: Secret,
    /// Most connections served at once; past it, only health, metrics and the admin's cluster
    /// and audit routes are, on [`crate::http::serve::RESERVED_CONNECTIONS`] more (see `http::serve`).
    pub max_connections: usize,
}

impl HttpConfig {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://var/boxoffice.db?mode=rwc` (embedded) or `postgres://user:pass@host/db`.
    pub url: Secret,
    pub max_connections: u32,
    /// Most write jobs the committer folds into one transaction (group commit).
    pub commit_batch_max: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub email: String,
    pub username: String,
    /// Empty: generated when the account is created (see [`crate::secrets`]).
    pub password: Secret,
    /// Where a generated password is written.
    pub password_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// HMAC secret for access tokens (HS256), at least 32 bytes. Empty: generated and kept in
    /// `jwt_secret_file` (see [`crate::secrets`]).
    pub jwt_secret: Secret,
    pub jwt_secret_file: PathBuf,
    pub access_ttl_seconds: u64,
    pub refresh_ttl_seconds: u64,
    /// Argon2id memory cost in KiB and passes (OWASP: 19 MiB, 2 passes).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Failed logins to one account from one client address within the window before that
    /// address's logins to it are refused (0: never).
    pub login_failures_per_account: u32,
    /// Failed logins to one account from all addresses together within the window before its
    /// logins are refused from everywhere (0: never).
    pub login_failures_per_account_all_addresses: u32,
    pub login_failure_window_seconds: u64,
    /// Logins, sign-ups and refreshes per client address per minute, per node (0: no limit).
    pub auth_per_address_per_minute: u32,
    /// Live streams (availability SSE, `/ws/logs`, gRPC `Watch`) one client address may hold
    /// open at once, per node (0: no limit).
    pub streams_per_address: u32,
    /// Peers whose `X-Forwarded-For` is believed.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// A list of strings as a TOML array or (from the environment) a comma-separated string; items
/// are trimmed and empty ones dropped.
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Text(String),
    }
    let items = match Form::deserialize(d)? {
        Form::List(items) => items,
        Form::Text(text) => text.split(',').map(str::to_string).collect(),
    };
    Ok(items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).map(str::to_owned).collect())
}

/// A list of addresses or CIDR ranges (see [`list`] for its forms).
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    list(d)?
        .iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an address or a CIDR range")))
        })
        .collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingConfig {
    /// Hold time for events that do not set their own `hold_seconds`.
    pub default_hold_seconds: u32,
    /// Upper bound for an event's `hold_seconds`.
    pub max_hold_seconds: u32,
    /// `max_per_person` of events that do not set it (0: no limit).
    pub default_max_per_person: u32,
    /// While a payment is in flight its hold cannot expire, for at most this long.
    pub payment_pin_max_seconds: u32,
    /// Every HTTP handler's call into an actor gives up after this and answers 503.
    pub actor_call_timeout_ms: u64,
    /// An inventory actor with no holds and no messages for this long stops (0: never).
    pub passivate_after_seconds: u64,
    /// Restarts of one actor (an event's inventory, the payment actor, a consumer) allowed within
    /// `restart_window_seconds` before its supervisor gives up on it for a window.
    pub max_restarts: u32,
    pub restart_window_seconds: u64,
    /// First restart delay; doubles per restart up to 5 s.
    pub restart_backoff_ms: u64,
    /// An order saga with nothing to do stops after this long (it reloads from the database).
    pub saga_idle_seconds: u64,
    /// How long a waiting-room admission lasts.
    pub admission_seconds: u32,
}

impl BookingConfig {
    /// The restart policy every supervisor applies (see [`crate::retry`]).
    pub fn restart_policy(&self) -> crate::retry::RestartPolicy {
        crate::retry::RestartPolicy {
            backoff: crate::retry::Backoff::new(Duration::from_millis(self.restart_backoff_ms), Duration::from_secs(5)),
            window: Duration::from_secs(self.restart_window_seconds),
            max_restarts: self.max_restarts,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentConfig {
    /// How long the simulated provider takes for the card token `tok_slow`.
    pub slow_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// Sender address of every e-mail.
    pub from: String,
    /// `file` (embedded: `.eml` files in `dir`) or `smtp`.
    pub transport: String,
    /// Where the file transport writes `.eml` files (embedded mode).
    pub dir: PathBuf,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `none` (plain, e.g. a local relay), `starttls`, or `tls` (implicit TLS, port 465).
    pub smtp_tls: String,
    /// Empty: no authentication.
    pub smtp_username: String,
    pub smtp_password: Secret,
    /// A send that takes longer fails and is retried.
    pub smtp_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, e.g. `127.0.0.1:9092`. Empty: the in-process bus (embedded mode).
    pub brokers: String,
    /// Prepended to every topic name (`<prefix>order.placed`), e.g. `boxoffice.`.
    pub topic_prefix: String,
    /// Partitions of each topic created at start-up (existing topics are left as they are).
    pub partitions: i32,
    pub replication_factor: i32,
    /// How long the producer keeps trying to deliver one message before the relay retries.
    pub message_timeout_ms: u64,
    /// Consumer group of the Notifier and of the Auditor.
    pub notifier_group: String,
    pub auditor_group: String,
}

impl KafkaConfig {
    pub fn enabled(&self) -> bool {
        !self.brokers.trim().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    /// `mongodb://host:port`. Empty: the audit log lives in the SQL database (embedded mode).
    pub url: Secret,
    pub database: String,
}

impl MongoConfig {
    pub fn enabled(&self) -> bool {
        !self.url.expose().trim().is_empty()
    }
}

/// Cluster mode (see [`crate::cluster`]): several nodes on one PostgreSQL, one owner per event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// Unique in the cluster; empty: the host name ([`ClusterConfig::node_name`]).
    pub node_name: String,
    /// The node server's address (`host:port`).
    pub listen: String,
    /// What peers dial; empty: `listen`.
    pub advertise: String,
    /// Peers to dial (`host:port`), as a TOML array or a comma-separated string.
    #[serde(deserialize_with = "list")]
    pub seeds: Vec<String>,
    /// Shared secret every node proves it knows when a connection opens.
    pub cookie: Secret,
    pub lease_ttl_ms: u64,
    /// PEM files for TLS between nodes (all three, or none for plain TCP).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub tls_ca: PathBuf,
}

/// This machine's host name (the default node name).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "boxoffice".to_owned())
}

impl ClusterConfig {
    /// The configured name, or the host name.
    pub fn node_name(&self) -> String {
        let name = self.node_name.trim();
        if name.is_empty() { host_name() } else { name.to_owned() }
    }

    /// The address peers dial.
    pub fn advertise(&self) -> &str {
        if self.advertise.trim().is_empty() { self.listen.trim() } else { self.advertise.trim() }
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    /// Whether the TLS files are configured (then all three are).
    pub fn tls(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty()
    }

    fn validate(&self, database_url: &str, jwt_secret: &str) -> Result<(), ConfigError> {
        fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
            ConfigError::Invalid { key, message: message.into() }
        }
        if !self.enabled {
            return Ok(());
        }
        if self.cookie.expose().trim().is_empty() {
            return Err(bad("cluster.cookie", "is required in cluster mode (the same secret on every node)"));
        }
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(bad(
                "database.url",
                "cluster mode needs PostgreSQL (every node on the same database); SQLite is single-node only",
            ));
        }
        if jwt_secret.is_empty() {
            return Err(bad(
                "auth.jwt_secret",
                "cluster mode needs an explicit key shared by every node (a generated one would differ per node)",
            ));
        }
        let name = self.node_name();
        if name.contains(['@', ' ', '/']) {
            return Err(bad("cluster.node_name", format!("`{name}` may not contain '@', '/' or spaces")));
        }
        if self.listen.trim().parse::<std::net::SocketAddr>().is_err() {
            return Err(bad("cluster.listen", format!("`{}` is not an ip:port address", self.listen)));
        }
        let host_port = |s: &str| s.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !host_port(self.advertise()) {
            return Err(bad("cluster.advertise", format!("`{}` is not host:port", self.advertise())));
        }
        if let Some(seed) = self.seeds.iter().find(|s| !host_port(s)) {
            return Err(bad("cluster.seeds", format!("`{seed}` is not host:port")));
        }
        if self.lease_ttl_ms < 500 {
            return Err(bad("cluster.lease_ttl_ms", "must be at least 500"));
        }
        let files = [&self.tls_cert, &self.tls_key, &self.tls_ca].map(|p| p.as_os_str().is_empty());
        if files.iter().any(|&empty| empty != files[0]) {
            return Err(bad("cluster.tls_cert", "tls_cert, tls_key and tls_ca go together: set all three or none"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedConfig {
    /// Create demo categories and events when the catalogue is empty.
    pub demo_data: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// Where the gRPC API listens (`ip:port`; port 0 picks a free port); empty: no gRPC.
    pub addr: String,
}

impl GrpcConfig {
    /// The address to listen on, or `None` when gRPC is off (checked by [`Config::validate`]).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.addr.trim().parse().ok()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompatConfig {
    /// Serve the replaced systems' routes (`http::compat`).
    pub enabled: bool,
    /// The card token the compatibility payment routes charge when an old client sends none
    /// (the systems they replace had no card). Empty: such a payment is a 422 naming `card_token`.
    pub default_card_token: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter (`RUST_LOG` wins when set).
    pub filter: String,
    /// `pretty` for people, `json` for log shippers.
    pub format: String,
}

/// The async runtime `boxoffice serve` runs on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Threads that run requests and actors; 0: see [`RuntimeConfig::workers`].
    pub worker_threads: usize,
    /// Whether the kernel may back the heap with transparent huge pages (see
    /// [`crate::app::allow_huge_pages`]).
    pub huge_pages: bool,
}

/// Most worker threads a configuration may ask for.
const MAX_WORKER_THREADS: usize = 1024;

impl RuntimeConfig {
    /// The worker threads to start: as configured, or by default one per core less one, at least
    /// one. The group committer has a thread of its own that every booking passes through (see
    /// `store::committer`); with a worker on every core as well, the committer and the workers
    /// take turns on the same cores, and each hand-off between them waits for a core to come
    /// free (measured on 2 cores: BENCHMARKS.md, 2026-12-06).
    pub fn workers(&self, cores: usize) -> usize {
        match self.worker_threads {
            0 => cores.saturating_sub(1).max(1),
            n => n,
        }
    }
}

/// figment's `Env` with every value kept as the string it was set to.
///
/// `Env` parses `12345678` into a number and `[abc` into an array (or tries to), which a `String`
/// key then refuses; secrets and passwords must be taken as written. Typed keys still work because
/// [`Config::load`] extracts lossily, turning `"42"` into 42 and `"true"` into true on demand.
struct StringEnv(Env);

impl Provider for StringEnv {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in self.0.iter() {
            let path: Vec<&str> = key.as_str().split('.').collect();
            insert_at(&mut dict, &path, Value::from(value));
        }
        Ok(self.0.profile.collect(dict))
    }
}

/// Puts `value` at the dotted `path` (`["http", "addr"]`), creating the sections on the way.
fn insert_at(dict: &mut Dict, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let section = dict.entry((*first).to_owned()).or_insert_with(|| Value::from(Dict::new()));
            if !matches!(section, Value::Dict(..)) {
                // A scalar where a section is wanted (`BOXOFFICE_HTTP` and `BOXOFFICE_HTTP__ADDR`):
                // the deeper key wins, and extraction then reports anything left wrong.
                *section = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = section {
                insert_at(inner, rest, value);
            }
        }
    }
}

/// A configuration that cannot run, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Default for Config {
    /// The built-in defaults alone ([`DEFAULTS`]).
    fn default() -> Self {
        // Compiled in and checked by a unit test, so it always loads.
        Figment::from(Toml::string(DEFAULTS))
            .extract()
            .unwrap_or_else(|e| unreachable!("the embedded config.toml does not load: {e}"))
    }
}

/// JWT keys that were ever shipped as samples (in `config.toml` and `docker-compose.yml`): anyone
/// can mint tokens with them, so a configuration that uses one does not start.
pub const SAMPLE_JWT_SECRETS: &[&str] =
    &["boxoffice-dev-secret-change-me-please", "compose-demo-secret-change-me-0123456789"];

/// Admin passwords that were ever shipped as samples.
pub const SAMPLE_ADMIN_PASSWORDS: &[&str] = &["change-me-admin"];

impl Config {
    /// Defaults, then the TOML file (if present), then `BOXOFFICE_*` environment variables.
    pub fn load(path: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let path = path.map(PathBuf::from).unwrap_or_else(|| PathBuf::from("config.toml"));
        let config: Config = Figment::from(Toml::string(DEFAULTS))
            .merge(Toml::file(path))
            // Only BOXOFFICE_<SECTION>__<KEY>; BOXOFFICE_CONFIG names the file and is not a key.
            .merge(StringEnv(Env::prefixed("BOXOFFICE_").filter(|k| k.as_str().contains("__")).split("__")))
            // Lossy: the environment's strings become numbers and booleans where the key wants one.
            .extract_lossy()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges and relations between keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
            ConfigError::Invalid { key, message: message.into() }
        }
        if self.runtime.worker_threads > MAX_WORKER_THREADS {
            return Err(bad(
                "runtime.worker_threads",
                format!("must be at most {MAX_WORKER_THREADS} (0: one per core less one)"),
            ));
        }
        if self.http.header_timeout_ms == 0 {
            return Err(bad("http.header_timeout_ms", "must be at least 1"));
        }
        if self.http.shutdown_timeout_ms == 0 {
            return Err(bad("http.shutdown_timeout_ms", "must be at least 1"));
        }
        if !self.grpc.addr.trim().is_empty() && self.grpc.socket_addr().is_none() {
            return Err(bad("grpc.addr", "must be ip:port, or empty to serve no gRPC"));
        }
        let db = self.database.url.expose();
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return Err(bad("database.url", "must start with sqlite:, postgres:// or postgresql://"));
        }
        if db.contains(":memory:") || db.contains("mode=memory") {
            // The committer has its own connection; an in-memory database would be another one.
            return Err(bad("database.url", "in-memory SQLite is not supported; use a file"));
        }
        if self.database.max_connections == 0 {
            return Err(bad("database.max_connections", "must be at least 1"));
        }
        if self.database.commit_batch_max == 0 {
            return Err(bad("database.commit_batch_max", "must be at least 1"));
        }
        let jwt = self.auth.jwt_secret.expose();
        if !jwt.is_empty() && jwt.len() < 32 {
            return Err(bad("auth.jwt_secret", "must be at least 32 bytes (or empty, to generate one)"));
        }
        if SAMPLE_JWT_SECRETS.contains(&jwt) {
            return Err(bad("auth.jwt_secret", "is a published sample value; set a random key of your own"));
        }
        if self.auth.access_ttl_seconds == 0 || self.auth.refresh_ttl_seconds == 0 {
            return Err(bad("auth.access_ttl_seconds", "token lifetimes must be positive"));
        }
        if self.auth.argon2_memory_kib < 8 || self.auth.argon2_iterations == 0 {
            return Err(bad("auth.argon2_memory_kib", "argon2 needs at least 8 KiB and 1 pass"));
        }
        let password = self.admin.password.expose();
        if SAMPLE_ADMIN_PASSWORDS.contains(&password) {
            return Err(bad("admin.password", "is a published sample value; set your own, or leave it empty"));
        }
        if !password.is_empty()
            && let Err(why) = crate::domain::Password::parse(password, &[&self.admin.username, &self.admin.email])
        {
            return Err(bad("admin.password", why));
        }
        if !self.admin.email.contains('@') {
            return Err(bad("admin.email", "must be an e-mail address"));
        }
        if self.http.max_connections == 0 {
            return Err(bad("http.max_connections", "must be at least 1"));
        }
        let b = &self.booking;
        if b.default_hold_seconds == 0 || b.default_hold_seconds > b.max_hold_seconds {
            return Err(bad("booking.default_hold_seconds", "must be between 1 and booking.max_hold_seconds"));
        }
        if b.default_max_per_person > MAX_PER_PERSON {
            return Err(bad("booking.default_max_per_person", format!("must be between 0 and {MAX_PER_PERSON}")));
        }
        if b.payment_pin_max_seconds == 0 {
            return Err(bad("booking.payment_pin_max_seconds", "must be at least 1"));
        }
        if b.admission_seconds == 0 {
            return Err(bad("booking.admission_seconds", "must be at least 1"));
        }
        if b.actor_call_timeout_ms == 0 {
            return Err(bad("booking.actor_call_timeout_ms", "must be at least 1"));
        }
        if !matches!(self.mail.transport.as_str(), "file" | "smtp") {
            return Err(bad("mail.transport", "must be \"file\" or \"smtp\""));
        }
        if !matches!(self.mail.smtp_tls.as_str(), "none" | "starttls" | "tls") {
            return Err(bad("mail.smtp_tls", "must be \"none\", \"starttls\" or \"tls\""));
        }
        if self.mail.transport == "smtp" && self.mail.smtp_host.trim().is_empty() {
            return Err(bad("mail.smtp_host", "is required when mail.transport is \"smtp\""));
        }
        if self.kafka.enabled() {
            if self.kafka.partitions < 1 || self.kafka.replication_factor < 1 {
                return Err(bad("kafka.partitions", "partitions and replication_factor must be at least 1"));
            }
            if self.kafka.notifier_group == self.kafka.auditor_group {
                return Err(bad("kafka.auditor_group", "must differ from kafka.notifier_group"));
            }
        }
        if self.mongodb.enabled() && !self.mongodb.url.expose().starts_with("mongodb://") {
            return Err(bad("mongodb.url", "must start with mongodb://"));
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err(bad("log.format", "must be \"pretty\" or \"json\""));
        }
        self.cluster.validate(db, jwt)?;
        Ok(())
    }

    pub fn actor_timeout(&self) -> Duration {
        Duration::from_millis(self.booking.actor_call_timeout_ms)
    }

    /// The longest a saga waits for the payment provider's answer (the simulated provider's
    /// slowest card plus an actor call); a payment still pending after it was interrupted.
    pub fn charge_timeout(&self) -> Duration {
        Duration::from_millis(self.payment.slow_ms) + self.actor_timeout()
    }

    pub fn is_sqlite(&self) -> bool {
        self.database.url.expose().starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::default();
        c.validate().expect("defaults validate");
        assert!(c.is_sqlite());
        assert_eq!(c.http.addr.port(), 8080);
    }

    #[test]
    fn the_runtime_leaves_a_core_to_the_committer_unless_told_otherwise() {
        let auto = RuntimeConfig { worker_threads: 0, huge_pages: false };
        assert_eq!([1, 2, 4, 16].map(|cores| auto.workers(cores)), [1, 1, 3, 15]);
        assert_eq!(RuntimeConfig { worker_threads: 6, huge_pages: false }.workers(2), 6);
        let mut c = Config::default();
        c.runtime.worker_threads = MAX_WORKER_THREADS + 1;
        assert!(matches!(c.validate(), Err(ConfigError::Invalid { key: "runtime.worker_threads", .. })));
    }

    #[test]
    fn the_shipped_config_toml_comments_every_key_and_loads() {
        let shipped = include_str!("../config.toml");
        let mut previous = "";
        for line in shipped.lines() {
            let is_key = line.split_once('=').is_some_and(|(k, _)| !k.trim().is_empty() && !line.starts_with('#'));
            if is_key {
                assert!(previous.starts_with('#'), "config.toml: `{line}` has no comment line of its own");
            }
            previous = line;
        }
        let parsed: Config = Figment::from(Toml::string(shipped)).extract().expect("config.toml loads");
        parsed.validate().expect("config.toml validates");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn cluster_seeds_take_a_list_or_a_comma_separated_string() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[cluster]\nseeds = [\"127.0.0.1:4701\", \"node-c:4702\"]\n")?;
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.cluster.seeds, ["127.0.0.1:4701", "node-c:4702"]);
            jail.set_env("BOXOFFICE_CLUSTER__SEEDS", "127.0.0.1:4701,127.0.0.1:4702");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.cluster.seeds, ["127.0.0.1:4701", "127.0.0.1:4702"]);
            Ok(())
        });
    }

    /// A configuration that would run as a cluster node, for the refusals below to break one key.
    fn cluster_node() -> Config {
        let mut c = Config::default();
        c.cluster.enabled = true;
        c.cluster.node_name = "node-a".into();
        c.cluster.cookie = "a-cookie-of-our-own".into();
        c.database.url = "postgres://boxoffice@127.0.0.1/boxoffice".into();
        c.auth.jwt_secret = "a-shared-key-of-our-own-0123456789abcdef".into();
        c
    }

    #[test]
    fn cluster_mode_starts_only_with_a_cookie_postgresql_and_a_shared_jwt_key() {
        cluster_node().validate().expect("a complete cluster node validates");
        let refused = |change: fn(&mut Config), key: &str, says: &str| {
            let mut c = cluster_node();
            change(&mut c);
            let err = c.validate().expect_err(key).to_string();
            assert!(err.contains(key) && err.contains(says), "{key}: {err}");
        };
        refused(|c| c.cluster.cookie = "".into(), "cluster.cookie", "required");
        refused(|c| c.database.url = "sqlite://var/x.db?mode=rwc".into(), "database.url", "PostgreSQL");
        refused(|c| c.auth.jwt_secret = "".into(), "auth.jwt_secret", "shared by every node");
        refused(|c| c.cluster.seeds = vec!["no-port".into()], "cluster.seeds", "no-port");
        refused(|c| c.cluster.listen = "localhost".into(), "cluster.listen", "ip:port");
        refused(|c| c.cluster.node_name = "a@b".into(), "cluster.node_name", "'@'");
        refused(|c| c.cluster.lease_ttl_ms = 10, "cluster.lease_ttl_ms", "500");
        refused(|c| c.cluster.tls_cert = "node.pem".into(), "cluster.tls_cert", "all three");
        let mut tls = cluster_node();
        (tls.cluster.tls_cert, tls.cluster.tls_key, tls.cluster.tls_ca) =
            ("node.pem".into(), "node.key".into(), "ca.pem".into());
        tls.validate().expect("all three TLS files (read at start-up)");
        // Single-node mode checks none of it.
        let mut single = cluster_node();
        single.cluster.enabled = false;
        single.cluster.cookie = "".into();
        single.database.url = "sqlite://var/x.db?mode=rwc".into();
        single.validate().expect("cluster keys are not checked when the cluster is off");
        assert_eq!(cluster_node().cluster.advertise(), "127.0.0.1:4700", "advertise defaults to listen");
        assert!(!Config::default().cluster.node_name().is_empty(), "the host name by default");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn trusted_proxies_take_a_list_or_a_comma_separated_string() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[limits]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n")?;
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.limits.trusted_proxies.len(), 2);
            assert!(c.limits.trusted_proxies[1].contains(&"192.0.2.7".parse::<std::net::IpAddr>().unwrap()));
            jail.set_env("BOXOFFICE_LIMITS__TRUSTED_PROXIES", "127.0.0.1, ::1,172.16.0.0/12");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.limits.trusted_proxies.len(), 3);
            jail.set_env("BOXOFFICE_LIMITS__TRUSTED_PROXIES", "not-an-address");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("not-an-address"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_short_jwt_secret_is_rejected_with_its_key() {
        let mut c = Config::default();
        c.auth.jwt_secret = "short".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("auth.jwt_secret"), "{err}");
    }

    #[test]
    fn the_shipped_config_carries_no_secret_and_every_published_sample_is_refused() {
        let c = Config::default();
        assert_eq!(c.auth.jwt_secret.expose(), "", "config.toml ships no JWT key");
        assert_eq!(c.admin.password.expose(), "", "config.toml ships no admin password");
        for sample in SAMPLE_JWT_SECRETS {
            let mut c = Config::default();
            c.auth.jwt_secret = (*sample).into();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("auth.jwt_secret") && err.contains("sample"), "{err}");
        }
        let mut c = Config::default();
        c.admin.password = "change-me-admin".into();
        assert!(c.validate().unwrap_err().to_string().contains("admin.password"));
        c.admin.password = "admin-rocks-2026".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("username or e-mail"), "the password policy applies: {err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closures return its (large) error type
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[http]\naddr = \"127.0.0.1:9000\"\n")?;
            jail.set_env("BOXOFFICE_HTTP__ADDR", "127.0.0.1:0");
            jail.set_env("BOXOFFICE_BOOKING__DEFAULT_HOLD_SECONDS", "42");
            jail.set_env("BOXOFFICE_CONFIG", "config.toml");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.http.addr.port(), 0);
            assert_eq!(c.booking.default_hold_seconds, 42);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn string_keys_take_environment_values_verbatim_even_when_they_look_like_numbers_or_arrays() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BOXOFFICE_ADMIN__PASSWORD", "20261202173055");
            jail.set_env("BOXOFFICE_MAIL__SMTP_PASSWORD", "007");
            jail.set_env("BOXOFFICE_MAIL__SMTP_USERNAME", "true");
            jail.set_env("BOXOFFICE_AUTH__JWT_SECRET", "[not-an-array, 0123456789abcdefghijklmnop]");
            // Typed keys still parse from the same strings.
            jail.set_env("BOXOFFICE_MAIL__SMTP_PORT", "2525");
            jail.set_env("BOXOFFICE_SEED__DEMO_DATA", "false");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.admin.password.expose(), "20261202173055");
            assert_eq!(c.mail.smtp_password.expose(), "007");
            assert_eq!(c.mail.smtp_username, "true");
            assert_eq!(c.auth.jwt_secret.expose(), "[not-an-array, 0123456789abcdefghijklmnop]");
            assert_eq!(c.mail.smtp_port, 2525);
            assert!(!c.seed.demo_data);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn a_non_numeric_environment_value_for_a_number_key_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BOXOFFICE_HTTP__REQUEST_TIMEOUT_MS", "soon");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn an_unknown_key_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[http]\nadress = \"127.0.0.1:9000\"\n")?;
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn secrets_never_show_in_a_printed_config() {
        let mut c = Config::default();
        c.database.url = "postgres://boxoffice:hunter2-db@127.0.0.1/boxoffice".into();
        c.mail.smtp_password = "hunter2-smtp".into();
        let printed = format!("{c:?}");
        c.auth.jwt_secret = "hunter2-jwt-0123456789abcdefghijklmnop".into();
        c.admin.password = "hunter2-admin".into();
        assert!(!printed.contains("hunter2"), "a secret printed in {printed}");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn a_partial_config_file_takes_every_other_key_from_the_embedded_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[booking]\nmax_restarts = 9\n")?;
            let c = Config::load(None).map_err(|e| e.to_string())?;
            let d = Config::default();
            assert_eq!(c.booking.max_restarts, 9);
            assert_eq!(c.booking.restart_window_seconds, d.booking.restart_window_seconds);
            assert_eq!(c.http.addr, d.http.addr);
            Ok(())
        });
    }
}
