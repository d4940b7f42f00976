//! Storage: the sea-orm connection (PostgreSQL or SQLite), migrations, entities, the
//! group-commit [`Committer`] through which every slot-changing write goes, and the other writes
//! ([`accounts`], [`sessions`], [`catalog`], [`idempotency`] keys), each with its domain event. HTTP handlers
//! validate and call these; they open no transactions of their own.

pub mod accounts;
pub mod advisory;
pub mod catalog;
pub mod committer;
pub mod entities;
pub mod idempotency;
pub mod leases;
pub mod mongo;
pub mod notifications;
pub mod outbox;
pub mod sessions;

use std::time::Duration;

use boxoffice_migrations::MigratorTrait;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlErr};

pub use committer::{CommitFeed, Committer, WriteOp};

/// Opens the pool. SQLite gets WAL (readers never block the writer) and `synchronous=FULL`,
/// so a committed hold survives power loss, not only a crash; group commit pays for the fsync.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(url, max_connections)?).await
}

/// How long the committer's PostgreSQL session may sit idle inside a transaction (see
/// [`connect_writer`]).
pub const WRITER_IDLE_IN_TRANSACTION: Duration = Duration::from_secs(2);

/// The committer's own single connection on PostgreSQL: always ready (no pool contention with
/// readers, no liveness ping before each batch), and its prepared statements stay cached. On
/// SQLite the committer opens a synchronous connection of its own from this one's file
/// (`committer::SqliteSink`), and this one only serves the readiness check.
///
/// On PostgreSQL its transactions hold share locks on `event_leases` rows (the commit fence). A
/// node frozen in the middle of one (`SIGSTOP`, a VM pause) would keep those locks, and every
/// other node's takeover of those events would wait on it for as long as it stays frozen; so
/// the server ends this connection's session once it idles inside a transaction for
/// [`WRITER_IDLE_IN_TRANSACTION`] (the committer itself never pauses mid-transaction), the frozen
/// node's batch fails when it wakes, and the fence refuses it anyway.
pub async fn connect_writer(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = options(url, 1)?;
    opts.test_before_acquire(false);
    let idle = WRITER_IDLE_IN_TRANSACTION.as_millis().to_string();
    opts.map_sqlx_postgres_opts(move |o| o.options([("idle_in_transaction_session_timeout", idle.clone())]));
    Database::connect(opts).await
}

/// SQLite's page cache per connection, in KiB. It stays small: a rush touches the right edge of
/// a few B-trees, and with 64 MiB the writer thread spent a visible share in
/// pcache1TruncateUnsafe, which walks the cache's hash table (8 MiB: 7,331 and 7,771 holds/s
/// against 6,918 and 6,837 with 64 MiB, same run). The pool's connections and the committer's
/// own (`committer::SqliteSink`) both use it.
pub(crate) const SQLITE_CACHE_KIB: u32 = 8192;

/// WAL pages between checkpoints, on every SQLite connection. A checkpoint runs inline after the
/// commit that crosses the mark, and the committer stalls while it copies and syncs: every 2,048
/// pages (8 MiB) rather than 8,192 cut SQLite's p99 under a rush by a third at the same
/// throughput (BENCHMARKS.md, 2026-12-06). The WAL is still fsynced on every commit.
pub(crate) const SQLITE_WAL_AUTOCHECKPOINT_PAGES: u32 = 2048;

fn options(url: &str, max_connections: u32) -> Result<ConnectOptions, DbErr> {
    if let Some(path) = sqlite_path(url) {
        private_sqlite_file(std::path::Path::new(&path))
            .map_err(|e| DbErr::Custom(format!("cannot prepare the database file {path}: {e}")))?;
    }
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
                .pragma("wal_autocheckpoint", SQLITE_WAL_AUTOCHECKPOINT_PAGES.to_string())
                .pragma("temp_store", "memory")
        });
    Ok(opts)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    boxoffice_migrations::Migrator::up(db, None).await
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// An SQLite database holds password and refresh-token hashes and e-mails: its directory is
/// created owner-only (0700) and the file itself, created empty here if missing, is 0600, as are
/// its WAL and shared-memory files (SQLite gives those the database file's mode; files from an
/// older start are tightened too).
fn private_sqlite_file(path: &std::path::Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::secrets::private_dir(parent)?;
    }
    let mut create = std::fs::OpenOptions::new();
    create.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        create.mode(0o600);
    }
    match create.open(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        crate::secrets::restrict(std::path::Path::new(&name))?;
    }
    Ok(())
}

/// The outbox row for a domain event; written in the same transaction as the change it reports.
pub fn outbox_row(e: &crate::domain::DomainEvent) -> entities::outbox::ActiveModel {
    use sea_orm::ActiveValue::Set;
    entities::outbox::ActiveModel {
        event_id: Set(e.id),
        event_type: Set(e.event_type().as_str().to_string()),
        aggregate_id: Set(e.aggregate_id),
        payload: Set(e.payload.to_json()),
        occurred_at: Set(e.occurred_at),
        ..Default::default()
    }
}

/// Records a domain event in the outbox inside the caller's transaction, for writes that do not
/// go through the committer (accounts, catalogue).
pub async fn record_event(txn: &sea_orm::DatabaseTransaction, event: &crate::domain::DomainEvent) -> Result<(), DbErr> {
    use sea_orm::EntityTrait;
    entities::outbox::Entity::insert(outbox_row(event)).exec_without_returning(txn).await?;
    Ok(())
}

/// A write that failed; a taken unique key is told apart, since callers answer it as a conflict.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("a unique key is already taken")]
    Duplicate(#[source] DbErr),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl WriteError {
    pub fn from_db(e: DbErr) -> Self {
        if is_unique_violation(&e) { Self::Duplicate(e) } else { Self::Db(e) }
    }
}

/// True when the database itself is out of reach (pool closed or exhausted, connection lost,
/// I/O failure): the request may succeed later, so callers answer 503 rather than 500.
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error as Sqlx};
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            e.as_ref(),
            Sqlx::Io(_)
                | Sqlx::PoolTimedOut
                | Sqlx::PoolClosed
                | Sqlx::WorkerCrashed
                | Sqlx::Tls(_)
                | Sqlx::Protocol(_)
        ),
        _ => false,
    }
}

/// True when the error is a unique-constraint violation (a duplicate), so callers answer 409.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_found_in_urls() {
        assert_eq!(sqlite_path("sqlite://var/b.db?mode=rwc").as_deref(), Some("var/b.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_sqlite_database_and_its_directory_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let var = tmp.path().join("var");
        let url = format!("sqlite://{}/boxoffice.db?mode=rwc", var.display());
        let db = connect(&url, 2).await.unwrap();
        migrate(&db).await.expect("a write, so the WAL exists");
        let mode = |name: &str| std::fs::metadata(var.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(""), 0o700, "var/");
        assert_eq!(mode("boxoffice.db"), 0o600);
        assert_eq!(mode("boxoffice.db-wal"), 0o600);
        db.close().await.unwrap();

        // A file left 0644 by an older start is tightened on the next.
        let file = var.join("boxoffice.db");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        connect(&url, 1).await.unwrap();
        assert_eq!(mode("boxoffice.db"), 0o600);
    }
}
