//! The rules every entry point applies to who is calling, in one place (REST, the web page, and
//! any other API on the same core):
//!
//! - **Live accounts.** A valid signature is not enough: the token's subject must be a live
//!   account whose token generation is the token's (a password change or a deletion moves it on,
//!   ending every older access token), and its `jti` must not have been revoked by a logout. The
//!   account's role is read from the account, not trusted from the token. Accounts are cached for
//!   [`ACCOUNT_TTL`] and dropped from the cache when this node changes them, so the hot path costs
//!   a map lookup; another node's change is seen within that TTL.
//! - **Revoked access tokens** are kept in memory until their `exp`, loaded from the database at
//!   start and every [`SYNC_EVERY`] (so a logout on another node counts here within seconds).
//! - **Logins** go through [`Guard::authenticate`], the one place their rules live (and each
//!   outcome is announced: `user.login`, `user.login_failed`): every attempt
//!   is recorded in the database *before* the password is checked (so parallel guesses all count)
//!   and cleared by a success. Past `limits.login_failures_per_account` attempts from one client
//!   address within `limits.login_failure_window_seconds`, that address's logins to the subject
//!   are refused with 429 until the oldest leaves the window; past
//!   `limits.login_failures_per_account_all_addresses` from all addresses together, everyone's
//!   are. An attempt refused by a lock is not recorded, so it never extends the lock: neither an
//!   attacker trickling guesses nor the owner's own retries keep an account locked, and a guesser
//!   at one address cannot lock the owner out from theirs (OWASP's advice against lockout as a
//!   denial of service). The subject is the account, or the login text when no account has
//!   it, and a login for nobody spends the time of a password check: a login for an account that
//!   does not exist is answered exactly like one for an account that does, in time and in status.
//! - **Per-address limits** on login, register and refresh (`limits.auth_per_address_per_minute`),
//!   in memory per node, with `governor`. The address is the peer's, or the client named by
//!   `X-Forwarded-For` when the peer is one of `limits.trusted_proxies`.
//!
//! - **Streams per address** (`limits.streams_per_address`): a live stream (availability SSE,
//!   `/ws/logs`, gRPC `Watch`) holds a [`StreamPermit`] from [`Guard::open_stream`] for as long as
//!   it is open; one more from the same client address is refused with 429. Without it, anyone
//!   could hold every descriptor the server has with anonymous streams.
//!
//! Every refusal is counted in `boxoffice_requests_refused_total{reason}`.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use ipnet::IpNet;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, TransactionTrait};
use tokio::sync::watch;
use uuid::Uuid;

use super::{AuthKeys, Claims};
use crate::{
    config::LimitsConfig,
    domain::{
        DomainEvent, Payload, Role,
        events::{LoginFacts, LoginFailed},
        limits, truncated,
    },
    instruments::{refusal, refused},
    store::{entities::users, sessions},
};

/// How long an account's state is trusted from the cache.
pub const ACCOUNT_TTL: Duration = Duration::from_secs(2);
/// How often revocations recorded by other nodes are loaded.
pub const SYNC_EVERY: Duration = Duration::from_secs(2);

/// Why a caller is turned away.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the access token has been revoked")]
    Revoked,
    #[error("the account no longer exists")]
    AccountGone,
    #[error("too many failed logins for this account; try again later")]
    Locked { retry_after: Duration },
    #[error("too many requests from this address; slow down")]
    RateLimited { retry_after: Duration },
    #[error("this address has {open} live streams open, the most it may; close one first")]
    TooManyStreams { open: u32, retry_after: Duration },
    #[error("invalid login or password")]
    BadCredentials,
    #[error("checking the caller")]
    Store(#[from] DbErr),
}

/// What the account says about itself now.
#[derive(Debug, Clone, Copy)]
struct Live {
    role: Role,
    generation: i32,
}

pub struct Guard {
    db: DatabaseConnection,
    /// `None`: no such live account.
    accounts: Mutex<HashMap<Uuid, (Option<Live>, Instant)>>,
    /// Revoked `jti`s and their tokens' `exp`.
    revoked: Mutex<HashMap<Uuid, i64>>,
    /// Revocations up to here are loaded (less an overlap, see [`Guard::sync`]).
    synced_to: Mutex<DateTime<Utc>>,
    /// Failures per subject and address, and per subject over all addresses (0: no such lock).
    max_failures: u32,
    max_failures_everywhere: u32,
    failure_window: chrono::Duration,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted_proxies: Vec<IpNet>,
    /// Live streams open per client address, and the most allowed (0: no limit).
    streams: Mutex<HashMap<IpAddr, u32>>,
    max_streams: u32,
}

/// One open live stream of a client address, counted until dropped (see the module docs).
pub struct StreamPermit {
    guard: std::sync::Arc<Guard>,
    client: IpAddr,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut streams = lock(&self.guard.streams);
        if let Some(open) = streams.get_mut(&self.client) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.client);
            }
        }
    }
}

impl Guard {
    pub fn new(db: DatabaseConnection, limits: &LimitsConfig) -> Self {
        Self {
            db,
            accounts: Mutex::default(),
            revoked: Mutex::default(),
            synced_to: Mutex::new(DateTime::<Utc>::UNIX_EPOCH),
            max_failures: limits.login_failures_per_account,
            max_failures_everywhere: limits.login_failures_per_account_all_addresses,
            failure_window: chrono::Duration::seconds(limits.login_failure_window_seconds as i64),
            per_address: NonZeroU32::new(limits.auth_per_address_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            trusted_proxies: limits.trusted_proxies.clone(),
            streams: Mutex::default(),
            max_streams: limits.streams_per_address,
        }
    }

    /// A permit for one more live stream from `client`, or 429 when it holds the most allowed.
    pub fn open_stream(self: &std::sync::Arc<Self>, client: IpAddr) -> Result<StreamPermit, Refused> {
        let mut streams = lock(&self.streams);
        let open = streams.entry(client).or_default();
        if self.max_streams > 0 && *open >= self.max_streams {
            let open = *open;
            refused(refusal::STREAMS);
            return Err(Refused::TooManyStreams { open, retry_after: Duration::from_secs(5) });
        }
        *open += 1;
        Ok(StreamPermit { guard: self.clone(), client })
    }

    /// Admits the holder of a verified access token, or says why not; the role is the account's.
    pub async fn admit(&self, claims: &Claims) -> Result<Role, Refused> {
        if self.is_revoked(claims.jti) || claims.family.is_some_and(|f| self.is_revoked(f)) {
            refused(refusal::TOKEN_REVOKED);
            return Err(Refused::Revoked);
        }
        match self.account(claims.sub).await? {
            None => {
                refused(refusal::ACCOUNT_GONE);
                Err(Refused::AccountGone)
            }
            Some(live) if live.generation != claims.generation => {
                refused(refusal::TOKEN_REVOKED);
                Err(Refused::Revoked)
            }
            Some(live) => Ok(live.role),
        }
    }

    async fn account(&self, user: Uuid) -> Result<Option<Live>, DbErr> {
        if let Some((live, at)) = lock(&self.accounts).get(&user)
            && at.elapsed() < ACCOUNT_TTL
        {
            return Ok(*live);
        }
        let row = users::Entity::find_by_id(user).one(&self.db).await?;
        let live =
            row.filter(|u| u.deleted_at.is_none()).map(|u| Live { role: u.role, generation: u.token_generation });
        lock(&self.accounts).insert(user, (live, Instant::now()));
        Ok(live)
    }

    /// This node changed the account (password, role, deletion): read it afresh next time.
    pub fn forget(&self, user: Uuid) {
        lock(&self.accounts).remove(&user);
    }

    fn is_revoked(&self, jti: Uuid) -> bool {
        lock(&self.revoked).contains_key(&jti)
    }

    /// Ends one access token now (logout), on every node within [`SYNC_EVERY`].
    pub async fn revoke(&self, claims: &Claims) -> Result<(), DbErr> {
        let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
        sessions::revoke_access(&self.db, claims.jti, claims.sub, expires_at).await?;
        lock(&self.revoked).insert(claims.jti, claims.exp);
        Ok(())
    }

    /// Ends a session (refresh-token family): its refresh tokens, and the access tokens issued
    /// with them, which are refused from now on, on every node within [`SYNC_EVERY`]. The family
    /// is kept with the revoked `jti`s (ids are UUIDs: they never collide) for as long as an
    /// access token issued now could live.
    pub async fn revoke_family(&self, family: Uuid, user: Uuid, access_ttl: chrono::Duration) -> Result<(), DbErr> {
        sessions::revoke_family(&self.db, family).await?;
        let until = Utc::now() + access_ttl;
        sessions::revoke_access(&self.db, family, user, until).await?;
        lock(&self.revoked).insert(family, until.timestamp());
        Ok(())
    }

    /// Loads revocations recorded since the last sync (by any node).
    pub async fn sync(&self) -> Result<(), DbErr> {
        let now = Utc::now();
        // Rows committed late (a slow transaction, another node's clock) are caught by looking
        // back a little further than the last sync.
        let since = *lock(&self.synced_to) - chrono::Duration::seconds(30);
        let rows = sessions::revoked_since(&self.db, since).await?;
        let mut revoked = lock(&self.revoked);
        for r in rows {
            revoked.insert(r.jti, r.expires_at.timestamp());
        }
        *lock(&self.synced_to) = now;
        Ok(())
    }

    /// The live account a login (username, or e-mail in any case) names and its password opens,
    /// with every rule of a login applied (see the module docs), for a caller at `client`. Every
    /// decision is announced in the outbox, the security audit trail: `user.login`, or
    /// `user.login_failed` with its reason and the login text (its first
    /// [`limits::AUDITED_LOGIN`] characters). The login is bounded by the caller.
    pub async fn authenticate(
        &self,
        keys: &AuthKeys,
        login: &str,
        client: IpAddr,
        password: String,
    ) -> Result<users::Model, Refused> {
        let login = login.trim();
        let address = client.to_string();
        let mut named = None;
        let outcome = async {
            let user = users::Entity::find()
                .filter(users::Column::DeletedAt.is_null())
                .filter(
                    Condition::any()
                        .add(users::Column::Email.eq(login.to_lowercase()))
                        .add(users::Column::Username.eq(login)),
                )
                .one(&self.db)
                .await?;
            named = user.as_ref().map(|u| u.id);
            let subject = match &user {
                Some(u) => u.id.to_string(),
                None => format!("login:{}", login.to_lowercase()),
            };
            if self.counts_failures() {
                // Locked already: refused without being counted (it must not extend the lock).
                self.check_lockout(&subject, &address, 1).await?;
                sessions::record_login_attempt(&self.db, &subject, &address).await?;
                // Counted now: parallel guesses see each other.
                self.check_lockout(&subject, &address, 0).await?;
            }
            let opened = match &user {
                Some(u) => keys.verify_password(password, u.password_hash.clone()).await,
                None => {
                    keys.verify_nobody(password).await;
                    false
                }
            };
            match user {
                Some(u) if opened => {
                    if self.counts_failures() {
                        sessions::clear_login_failures(&self.db, &subject).await?;
                    }
                    Ok(u)
                }
                _ => Err(Refused::BadCredentials),
            }
        }
        .await;
        let failed = |reason: &str| {
            let login = truncated(login, limits::AUDITED_LOGIN);
            Payload::UserLoginFailed(LoginFailed { login, user_id: named, reason: reason.into() })
        };
        let announced = match &outcome {
            Ok(u) => Some(Payload::UserLogin(LoginFacts { user_id: u.id, username: u.username.clone() })),
            Err(Refused::BadCredentials) => Some(failed("bad_credentials")),
            Err(Refused::Locked { .. }) => Some(failed("locked")),
            Err(_) => None,
        };
        if let Some(payload) = announced {
            let txn = self.db.begin().await?;
            crate::store::record_event(&txn, &DomainEvent::new(payload)).await?;
            txn.commit().await?;
        }
        outcome
    }

    fn counts_failures(&self) -> bool {
        self.max_failures > 0 || self.max_failures_everywhere > 0
    }

    /// Refuses a login while `subject` is locked for `address`, or for every address; `pending`
    /// is 1 when the attempt being checked is not recorded yet, 0 once it is.
    async fn check_lockout(&self, subject: &str, address: &str, pending: usize) -> Result<(), Refused> {
        let now = Utc::now();
        let failures = sessions::login_failures_since(&self.db, subject, now - self.failure_window).await?;
        let here: Vec<DateTime<Utc>> = failures.iter().filter(|(_, a)| a == address).map(|(at, _)| *at).collect();
        let everywhere: Vec<DateTime<Utc>> = failures.iter().map(|(at, _)| *at).collect();
        let reopens = [(&here, self.max_failures), (&everywhere, self.max_failures_everywhere)]
            .into_iter()
            .filter_map(|(at, max)| self.reopens(at, max as usize, pending))
            .max();
        let Some(reopens) = reopens else { return Ok(()) };
        refused(refusal::LOGIN_LOCKED);
        Err(Refused::Locked { retry_after: (reopens - now).to_std().unwrap_or(Duration::from_secs(1)) })
    }

    /// When logins open again for failures at `at` (oldest first) under a limit of `max`, if
    /// they are closed now: once enough have left the window for the next attempt to be within
    /// the limit (the oldest `len - max + 1` of them).
    fn reopens(&self, at: &[DateTime<Utc>], max: usize, pending: usize) -> Option<DateTime<Utc>> {
        if max == 0 || at.len() + pending <= max {
            return None;
        }
        Some(at[at.len() - max] + self.failure_window)
    }

    /// Counts one login, register or refresh from `client` against the per-address limit.
    pub fn check_address(&self, client: IpAddr) -> Result<(), Refused> {
        let Some(limiter) = &self.per_address else { return Ok(()) };
        limiter.check_key(&client).map_err(|not_until| {
            refused(refusal::AUTH_RATE);
            Refused::RateLimited { retry_after: not_until.wait_time_from(limiter.clock().now()) }
        })
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_address(&self, peer: SocketAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = peer.ip().to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else { return peer };
        let mut client = peer;
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip.to_canonical();
                    if !self.is_trusted(client) {
                        break;
                    }
                }
                // A hop we cannot read ends the chain we can believe.
                Err(_) => break,
            }
        }
        client
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// Keeps the in-memory state current and small: loads other nodes' revocations, forgets
    /// expired ones and stale cache entries, and purges the tables, until `stop`.
    pub async fn maintain(self: std::sync::Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(SYNC_EVERY);
        let mut rounds = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %crate::error::Report(&e), "loading token revocations failed");
            }
            rounds += 1;
            if rounds.is_multiple_of(30) {
                let now = Utc::now().timestamp();
                lock(&self.revoked).retain(|_, exp| *exp >= now);
                lock(&self.accounts).retain(|_, (_, at)| at.elapsed() < ACCOUNT_TTL);
                if let Some(limiter) = &self.per_address {
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
                if let Err(e) = sessions::purge(&self.db, Utc::now() - self.failure_window).await {
                    tracing::warn!(error = %crate::error::Report(&e), "purging old sessions data failed");
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(trusted: &[&str]) -> Guard {
        let limits = LimitsConfig {
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            ..crate::Config::default().limits
        };
        Guard::new(DatabaseConnection::default(), &limits)
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let xff = Some("203.0.113.9, 10.0.0.7");
        assert_eq!(guard(&[]).client_address(peer, xff), peer.ip(), "untrusted peer: the header is ignored");
        let g = guard(&["10.0.0.0/8"]);
        assert_eq!(g.client_address(peer, xff), "203.0.113.9".parse::<IpAddr>().unwrap(), "proxies skipped");
        assert_eq!(g.client_address(peer, None), peer.ip());
        assert_eq!(g.client_address(peer, Some("garbage")), peer.ip());
        let v4_in_v6: SocketAddr = "[::ffff:10.0.0.5]:4000".parse().unwrap();
        assert_eq!(g.client_address(v4_in_v6, Some("198.51.100.1")), "198.51.100.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_per_address_limit_refuses_with_a_wait_and_counts_addresses_apart() {
        let limits = LimitsConfig { auth_per_address_per_minute: 3, ..crate::Config::default().limits };
        let g = Guard::new(DatabaseConnection::default(), &limits);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            g.check_address(a).unwrap();
        }
        match g.check_address(a) {
            Err(Refused::RateLimited { retry_after }) => assert!(retry_after > Duration::ZERO),
            other => panic!("{other:?}"),
        }
        g.check_address(b).expect("another address has its own allowance");
    }
}
