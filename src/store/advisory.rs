//! PostgreSQL advisory locks, each held by a connection of its own: the things several nodes
//! sharing one database must do once, or one at a time.
//!
//! - `boxoffice.startup`: migrations, the admin account and the demo data, so nodes started at
//!   the same instant on an empty database migrate once and seed once ([`Exclusive::wait`]).
//! - `boxoffice.node:<name>`: a node's name, for as long as it runs (`cluster::claim_name`).
//! - `boxoffice.outbox-relay`: the one node that publishes the outbox ([`Exclusive::try_take`]).
//!
//! A session-level lock goes when its session ends: a process killed with `kill -9` loses it the
//! moment the kernel closes its socket. A *frozen* process (`SIGSTOP`, a paused VM) keeps its
//! socket open, so a lock that must move on when its holder freezes is taken with an
//! `idle_session_timeout`: the holder proves it is alive with [`Exclusive::alive`] more often
//! than that, and the server ends a silent holder's session, which frees the lock.

use std::time::Duration;

use sea_orm::sqlx::{self, Connection, PgConnection};

/// Held until dropped or [`Exclusive::release`]d.
pub struct Exclusive {
    conn: PgConnection,
    /// When the session last answered (taking the lock counts).
    proven: std::time::Instant,
}

impl Exclusive {
    async fn connect(url: &str, idle: Option<Duration>) -> Result<PgConnection, sqlx::Error> {
        let mut options: sqlx::postgres::PgConnectOptions = url.parse()?;
        if let Some(idle) = idle {
            options = options.options([("idle_session_timeout", idle.as_millis().to_string())]);
        }
        PgConnection::connect_with(&options).await
    }

    /// Waits for the lock (other holders finish first).
    pub async fn wait(url: &str, name: &str) -> Result<Self, sqlx::Error> {
        let mut conn = Self::connect(url, None).await?;
        // The lock's 64-bit key is a hash of its name, so names stay readable in code and logs.
        sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))").bind(name).execute(&mut conn).await?;
        Ok(Self { conn, proven: std::time::Instant::now() })
    }

    /// The lock if nobody holds it. With `idle`, the server frees it once this side has been
    /// silent that long (see the module doc).
    pub async fn try_take(url: &str, name: &str, idle: Option<Duration>) -> Result<Option<Self>, sqlx::Error> {
        let mut conn = Self::connect(url, idle).await?;
        let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        if taken {
            Ok(Some(Self { conn, proven: std::time::Instant::now() }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Whether the session holding the lock is still there (one round trip); keeps an
    /// `idle_session_timeout` from ending it.
    pub async fn alive(&mut self) -> bool {
        let ok = self.conn.ping().await.is_ok();
        if ok {
            self.proven = std::time::Instant::now();
        }
        ok
    }

    /// How long ago the session last answered.
    pub fn unproven_for(&self) -> Duration {
        self.proven.elapsed()
    }

    /// Gives the lock back now rather than when the connection is dropped.
    pub async fn release(self) {
        let _ = self.conn.close().await;
    }
}
