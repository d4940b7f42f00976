//! Group commit: the single path for writes that must be durable before anyone is answered.
//!
//! Actors hand a job (a list of [`WriteOp`]s that must commit atomically) to the committer and
//! get a receiver for the outcome; they do not wait in their own handler, so one hot event can
//! have hundreds of holds in flight and the committer folds all waiting jobs into one
//! transaction: one fsync for many holds. Nobody is answered before their job has committed.
//! After each commit that wrote outbox rows, the rows' events go to the outbox relay with their
//! ids through the [`CommitFeed`], so it publishes them without reading them back from the store.
//!
//! **The fence (cluster mode).** A job that changes an event's slots on a cluster node carries a
//! [`WriteOp::Fence`]: the epoch of the lease under which its owner acts. Before writing, the
//! committer reads the current epochs of the batch's fenced events inside the transaction, with
//! `FOR SHARE` on PostgreSQL: a node taking the lease over (which updates that row) waits until
//! this transaction is over, so the epoch read is still the epoch at commit, and the new owner
//! then rebuilds from a store that includes these writes. A job whose epoch is stale is left out of
//! the batch and answered [`CommitError::Fenced`]; the other jobs of the batch, other events' or
//! unfenced ones, commit as usual. Checking up front costs one indexed read per batch that holds
//! fenced jobs, and nothing at all in single-node mode, which never fences.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryTrait,
    Statement, TransactionTrait,
    sea_query::{Expr, OnConflict},
};
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;

use super::entities::{
    events, orders, outbox, payment_status_history, payments, processed_events, queue_entries, refunds, tickets,
    waitlist_entries,
};
use crate::domain::{DomainEvent, OrderStatus, PaymentStatus, SlotCounts};

/// One write. Inserts of a batch run before its updates; within each kind, in submission order.
#[derive(Debug, Clone)]
pub enum WriteOp {
    InsertOrder(orders::ActiveModel),
    InsertTickets(Vec<tickets::ActiveModel>),
    InsertPayment(payments::ActiveModel),
    InsertRefund(refunds::ActiveModel),
    /// Moves an order to `to` if it is still in one of `from` (a guard against stale writers).
    SetOrderStatus {
        id: Uuid,
        from: &'static [OrderStatus],
        to: OrderStatus,
        /// Keep or clear the hold's expiry (a sold or released order holds nothing).
        expires_at: Option<chrono::DateTime<Utc>>,
        refund_cents: Option<i64>,
    },
    /// Sets a payment's status and appends to its status history.
    SetPaymentStatus {
        id: Uuid,
        status: PaymentStatus,
        detail: Option<String>,
        provider_ref: Option<String>,
    },
    UpdateEvent(events::ActiveModel),
    /// A new place in an event's waiting room.
    InsertQueueEntry(queue_entries::ActiveModel),
    /// Waiting-room entries let through, admitted until `until`.
    AdmitQueue {
        ids: Vec<Uuid>,
        until: chrono::DateTime<Utc>,
    },
    /// A new entry on an event's waiting list.
    InsertWaitlistEntry(waitlist_entries::ActiveModel),
    /// A waiting-list entry offered seats (`order`) or left.
    SetWaitlistStatus {
        id: Uuid,
        status: crate::domain::ListStatus,
        order: Option<Uuid>,
    },
    Outbox(DomainEvent),
    /// An event's counts after this job. `inventory.changed` is a snapshot, and a batch is one
    /// transaction, so counts between two of its writes are never visible to anyone: the batch
    /// writes one `inventory.changed` per event, with its last counts, after the batch's other
    /// events. Under a rush that is one row per event per batch instead of one per hold.
    Counts(SlotCounts),
    /// The relay delivered every outbox row up to here.
    RelayAdvanced(super::outbox::Position),
    /// Events a consumer has acted on (its side effect is done); known ones are skipped.
    MarkProcessed(Vec<processed_events::ActiveModel>),
    /// A message's record (see [`super::notifications`]).
    Notification(super::notifications::NotificationChange),
    /// Writes nothing; its commit means every job queued before it has finished.
    Barrier,
    /// The job may only commit while `event`'s lease is still at this epoch (see the module docs).
    Fence(Fence),
}

/// The lease epoch under which a cluster node changes an event's slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub event_id: Uuid,
    pub epoch: i64,
}

/// Why a job did not commit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The event's lease moved on to a newer epoch: another node owns it now, and this job's
    /// writes were left out (the rest of its batch committed).
    #[error("event {event_id} is owned under a newer lease than epoch {epoch}; the write was refused")]
    Fenced { event_id: Uuid, epoch: i64 },
    /// The transaction failed (the whole batch with it).
    #[error("the booking store did not commit")]
    Store(#[source] Arc<DbErr>),
}

/// What the committer reports back to one job.
pub type CommitResult = Result<(), CommitError>;

struct Job {
    ops: Vec<WriteOp>,
    done: Done,
}

impl Job {
    /// A job of barriers only (its commit is only an ordering point).
    fn writes_nothing(&self) -> bool {
        self.ops.iter().all(|op| matches!(op, WriteOp::Barrier))
    }

    fn fence(&self) -> Option<Fence> {
        self.ops.iter().find_map(|op| match op {
            WriteOp::Fence(f) => Some(*f),
            _ => None,
        })
    }
}

/// Who hears about a job's commit.
enum Done {
    /// A waiting task.
    Channel(oneshot::Sender<CommitResult>),
    /// A short, non-blocking callback run by the committer itself, right after the commit: for
    /// the hot path, where one waiting task per hold was measurable.
    Call(Box<dyn FnOnce(CommitResult) + Send + Sync>),
}

impl Done {
    fn send(self, result: CommitResult) {
        match self {
            Done::Channel(tx) => {
                let _ = tx.send(result);
            }
            Done::Call(f) => f(result),
        }
    }
}

/// The result for a job the committer will never run.
pub fn stopped() -> CommitResult {
    Err(CommitError::Store(Arc::new(DbErr::Custom("committer stopped".into()))))
}

/// What the committer tells the outbox relay: that rows committed (it wakes the relay), and, on
/// SQLite, the outbox rows each commit wrote, with their ids.
///
/// The relay publishes from here only rows that continue its sequence exactly (see
/// [`CommitFeed::take_from`]): a row written by another transaction (the pool's writers) leaves a
/// gap in the ids this feed carries, and a gap sends the relay to the store, which has every
/// committed row. So the feed saves reading back what this node just wrote, and can never make the
/// relay miss a row. This needs ids that become visible in order, which only SQLite's single
/// writer gives; on PostgreSQL the relay only listens for the wake-up (see [`super::outbox`]).
#[derive(Default)]
pub struct CommitFeed {
    wake: Notify,
    fresh: Mutex<VecDeque<(i64, DomainEvent)>>,
    /// Rows are kept only while this node's relay leads (another node's relay reads the store).
    listening: std::sync::atomic::AtomicBool,
}

/// At most this many rows wait in the feed; past it they are dropped (a relay that lags reads the
/// store instead).
const FEED_CAP: usize = 16_384;

impl CommitFeed {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Resolves at the next commit that wrote outbox rows (or at once if one came since the last wait).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    /// Whether the rows are wanted: true while this node's relay leads.
    pub fn listen(&self, on: bool) {
        self.listening.store(on, std::sync::atomic::Ordering::Relaxed);
        if !on {
            self.fresh.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// A commit wrote `count` outbox rows; `rows` are those with their ids (ids ascending), when
    /// the committer knows them.
    fn committed(&self, rows: Vec<(i64, DomainEvent)>, count: usize) {
        if count == 0 {
            return;
        }
        if !rows.is_empty() && self.listening.load(std::sync::atomic::Ordering::Relaxed) {
            let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
            if fresh.len() + rows.len() > FEED_CAP {
                fresh.clear();
            }
            fresh.extend(rows);
        }
        self.wake.notify_one();
    }

    /// The committed rows that continue exactly from id `next`, at most `max`, in id order; `None`
    /// when the row with id `next` is not here (another transaction wrote it, it was dropped, or
    /// the id was never used): then only the store can say what comes next. Rows before `next`
    /// (already published from the store) are discarded.
    pub fn take_from(&self, next: i64, max: usize) -> Option<Vec<(i64, DomainEvent)>> {
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        while fresh.front().is_some_and(|(id, _)| *id < next) {
            fresh.pop_front();
        }
        if fresh.front()?.0 != next {
            return None;
        }
        let mut rows = Vec::new();
        while rows.len() < max
            && let Some(row) = fresh.pop_front()
        {
            if row.0 != next + rows.len() as i64 {
                fresh.push_front(row);
                break;
            }
            rows.push(row);
        }
        Some(rows)
    }
}

/// Handle to the committer task. Cheap to clone.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the committer on `db`. It stops when every handle is dropped.
    ///
    /// The committer runs on its own thread with its own single-threaded runtime. On the shared
    /// runtime it was one task among hundreds of HTTP connections: each time the database answered,
    /// it waited its turn in the run queue behind them before it could answer the batch and start
    /// the next, and the whole booking pipeline moves at the committer's pace.
    ///
    /// On SQLite it writes through its own synchronous connection to the same file (see
    /// [`SqliteSink`]); on PostgreSQL through `db`.
    pub async fn spawn(db: DatabaseConnection, batch_max: usize, feed: Arc<CommitFeed>) -> Result<Self, DbErr> {
        let sink = match db.get_database_backend() {
            DbBackend::Sqlite => Sink::Sqlite(SqliteSink::open_like(&db).await?),
            _ => Sink::SeaOrm(db),
        };
        let (tx, rx) = mpsc::channel(batch_max.max(1) * 4);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbErr::Custom(format!("cannot build the committer runtime: {e}")))?;
        std::thread::Builder::new()
            .name("committer".into())
            .spawn(move || runtime.block_on(run(sink, rx, batch_max.max(1), feed)))
            .map_err(|e| DbErr::Custom(format!("cannot start the committer thread: {e}")))?;
        Ok(Self { tx })
    }

    /// Queues a job and returns at once; the receiver resolves after commit (or failure).
    pub async fn submit(&self, ops: Vec<WriteOp>) -> oneshot::Receiver<CommitResult> {
        let (done, rx) = oneshot::channel();
        self.queue(Job { ops, done: Done::Channel(done) }).await;
        rx
    }

    /// Queues a job; `then` runs on the committer's task once the job has committed (or failed),
    /// so it must be quick and must not block: answer a reply port, send a message.
    pub async fn submit_then(&self, ops: Vec<WriteOp>, then: impl FnOnce(CommitResult) + Send + Sync + 'static) {
        self.queue(Job { ops, done: Done::Call(Box::new(then)) }).await;
    }

    async fn queue(&self, job: Job) {
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job).await {
            job.done.send(stopped());
        }
    }

    /// Queues a job and waits for its commit.
    pub async fn commit(&self, ops: Vec<WriteOp>) -> CommitResult {
        self.submit(ops).await.await.unwrap_or_else(|_| stopped())
    }
}

/// Where the committer writes.
enum Sink {
    /// PostgreSQL: one transaction through sea-orm.
    SeaOrm(DatabaseConnection),
    /// SQLite: the committer thread's own connection.
    Sqlite(SqliteSink),
}

async fn run(mut sink: Sink, mut rx: mpsc::Receiver<Job>, batch_max: usize, feed: Arc<CommitFeed>) {
    let mut batch = Vec::with_capacity(batch_max);
    while rx.recv_many(&mut batch, batch_max).await > 0 {
        let started = std::time::Instant::now();
        let fences = fences_of(&batch);
        let result = match &mut sink {
            Sink::SeaOrm(db) => write_batch(db, &batch, &fences).await,
            Sink::Sqlite(conn) => conn.write(&batch, &fences),
        };
        metrics::histogram!(crate::instruments::COMMIT_DURATION).record(started.elapsed().as_secs_f64());
        tracing::debug!(jobs = batch.len(), elapsed_us = started.elapsed().as_micros() as u64, "group commit");
        let result = result.map_err(Arc::new);
        match &result {
            Err(e) => tracing::error!(error = %e, jobs = batch.len(), "group commit failed"),
            Ok(written) => {
                for f in &written.stale {
                    tracing::warn!(event = %f.event_id, epoch = f.epoch, "FENCED: a stale owner's writes were refused");
                    metrics::counter!(crate::instruments::FENCED_COMMITS).increment(1);
                }
            }
        }
        for job in batch.drain(..) {
            let outcome = match &result {
                Err(e) => Err(CommitError::Store(e.clone())),
                Ok(written) => match job.fence() {
                    Some(f) if written.stale.contains(&f) => {
                        Err(CommitError::Fenced { event_id: f.event_id, epoch: f.epoch })
                    }
                    _ => Ok(()),
                },
            };
            job.done.send(outcome);
        }
        if let Ok(written) = result {
            // After the answers: the callers wait on this commit, the relay does not.
            feed.committed(written.outbox, written.outbox_rows);
        }
    }
}

/// What a batch wrote that others need to know.
#[derive(Debug, Default)]
struct Written {
    /// The fences it refused.
    stale: Vec<Fence>,
    /// Its outbox rows, with their ids, in id order (for the [`CommitFeed`]; SQLite only).
    outbox: Vec<(i64, DomainEvent)>,
    /// How many outbox rows it wrote.
    outbox_rows: usize,
}

/// Rows per multi-row statement on PostgreSQL: one statement per table per batch (each statement
/// is a round trip), within its 65,535 bind parameters (the widest table has 12 columns).
const INSERT_CHUNK: usize = 1000;
const _: () = assert!(INSERT_CHUNK * 12 < 65_535);

/// The distinct fences of a batch, in first-seen order.
fn fences_of(jobs: &[Job]) -> Vec<Fence> {
    let mut fences: Vec<Fence> = Vec::new();
    for f in jobs.iter().filter_map(Job::fence) {
        if !fences.contains(&f) {
            fences.push(f);
        }
    }
    fences
}

/// The fences whose epoch is no longer the event's current one (or whose event has no lease).
fn stale_fences(fences: &[Fence], current: &HashMap<Uuid, i64>) -> Vec<Fence> {
    fences.iter().filter(|f| current.get(&f.event_id) != Some(&f.epoch)).copied().collect()
}

/// The jobs that may commit: unfenced ones, and fenced ones whose epoch is current.
fn admitted<'a>(jobs: &'a [Job], stale: &'a [Fence]) -> impl Iterator<Item = &'a Job> + 'a {
    jobs.iter().filter(move |j| j.fence().is_none_or(|f| !stale.contains(&f)))
}

/// The query for the current epochs of `fences`' events (`FOR SHARE` on PostgreSQL).
fn epochs_query(backend: DbBackend, fences: &[Fence]) -> String {
    let marks: Vec<String> = match backend {
        DbBackend::Postgres => (1..=fences.len()).map(|i| format!("${i}")).collect(),
        _ => vec!["?".to_owned(); fences.len()],
    };
    let lock = if backend == DbBackend::Postgres { " FOR SHARE" } else { "" };
    format!("SELECT event_id, epoch FROM event_leases WHERE event_id IN ({}){lock}", marks.join(", "))
}

/// Writes one batch atomically through sea-orm (PostgreSQL).
async fn write_batch(db: &DatabaseConnection, jobs: &[Job], fences: &[Fence]) -> Result<Written, DbErr> {
    let backend = db.get_database_backend();
    if fences.is_empty() && jobs.iter().all(Job::writes_nothing) {
        return Ok(Written::default());
    }
    let txn = db.begin().await?;
    let mut stale = Vec::new();
    if !fences.is_empty() {
        let values: Vec<sea_orm::Value> = fences.iter().map(|f| f.event_id.into()).collect();
        let rows =
            txn.query_all_raw(Statement::from_sql_and_values(backend, epochs_query(backend, fences), values)).await?;
        let mut current = HashMap::new();
        for row in rows {
            current.insert(row.try_get::<Uuid>("", "event_id")?, row.try_get::<i64>("", "epoch")?);
        }
        stale = stale_fences(fences, &current);
    }
    let batch = build_statements(backend, admitted(jobs, &stale));
    if batch.steps.is_empty() {
        // Nothing to write; ending the transaction releases the share locks.
        txn.rollback().await?;
        return Ok(Written { stale, ..Written::default() });
    }
    for step in batch.steps {
        match step {
            Step::Sql(s) => {
                txn.execute_raw(s).await?;
            }
            Step::Rows(_) => return Err(DbErr::Custom("row-at-a-time inserts are only built for SQLite".into())),
        }
    }
    txn.commit().await?;
    // No rows for the feed: on PostgreSQL the relay reads the store (see `store::outbox`).
    Ok(Written { stale, outbox: Vec::new(), outbox_rows: batch.outbox.len() })
}

/// The committer's SQLite connection: synchronous, on the committer's own thread.
///
/// Through sqlx every batch was a hand-off to sqlx's worker thread and back, with the batch's
/// statements parsed anew each time (one multi-statement text per batch). Here the batch runs on
/// the committer's thread with cached prepared statements. It is a second connection to the same
/// file as the pool, with the same settings; SQLite's write lock orders it with the pool's few
/// writers (sign-ups, idempotency keys), as before.
pub struct SqliteSink {
    conn: rusqlite::Connection,
}

impl SqliteSink {
    /// Opens the file behind `db` (an open SQLite pool) with the pool's settings.
    async fn open_like(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT file FROM pragma_database_list WHERE name = 'main'",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("SQLite has no main database".into()))?;
        let path: String = row.try_get("", "file")?;
        if path.is_empty() {
            return Err(DbErr::Custom("the committer needs a SQLite file, not an in-memory database".into()));
        }
        let conn = rusqlite::Connection::open(&path).map_err(sqlite_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sqlite_err)?;
        // The same as the pool's connections (store::connect): durable commits, checked foreign
        // keys, and the checkpoints that this connection runs after its commits.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -{}; PRAGMA wal_autocheckpoint = {}; PRAGMA temp_store = MEMORY;",
            super::SQLITE_CACHE_KIB,
            super::SQLITE_WAL_AUTOCHECKPOINT_PAGES,
        ))
        .map_err(sqlite_err)?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(Self { conn })
    }

    /// Writes one batch atomically. The transaction takes SQLite's write lock up front
    /// (immediate), so the epochs it reads cannot change before it commits.
    fn write(&mut self, jobs: &[Job], fences: &[Fence]) -> Result<Written, DbErr> {
        if fences.is_empty() && jobs.iter().all(Job::writes_nothing) {
            return Ok(Written::default());
        }
        // Dropped without commit on an error: rolled back.
        let txn = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sqlite_err)?;
        let mut stale = Vec::new();
        if !fences.is_empty() {
            let mut query = txn.prepare(&epochs_query(DbBackend::Sqlite, fences)).map_err(sqlite_err)?;
            let ids = fences.iter().map(|f| f.event_id.as_bytes().to_vec());
            let mut current = HashMap::new();
            let mut rows = query.query(rusqlite::params_from_iter(ids)).map_err(sqlite_err)?;
            while let Some(row) = rows.next().map_err(sqlite_err)? {
                let id: Vec<u8> = row.get(0).map_err(sqlite_err)?;
                let id = Uuid::from_slice(&id).map_err(|e| DbErr::Custom(format!("a lease's event id: {e}")))?;
                current.insert(id, row.get::<_, i64>(1).map_err(sqlite_err)?);
            }
            stale = stale_fences(fences, &current);
        }
        let batch = build_statements(DbBackend::Sqlite, admitted(jobs, &stale));
        let mut ids = Vec::with_capacity(batch.outbox.len());
        for step in batch.steps {
            match step {
                Step::Sql(s) => {
                    let values = s.values.map(|v| v.0).unwrap_or_default();
                    let params = values.into_iter().map(sqlite_value).collect::<Result<Vec<_>, _>>()?;
                    txn.prepare_cached(&s.sql)
                        .map_err(sqlite_err)?
                        .execute(rusqlite::params_from_iter(params))
                        .map_err(sqlite_err)?;
                }
                Step::Rows(rows) => {
                    let mut statement = txn.prepare_cached(&rows.sql).map_err(sqlite_err)?;
                    for row in rows.rows {
                        let params = row.into_iter().map(sqlite_value).collect::<Result<Vec<_>, _>>()?;
                        statement.execute(rusqlite::params_from_iter(params)).map_err(sqlite_err)?;
                        if rows.outbox {
                            // Nobody else writes while this transaction holds the write lock.
                            ids.push(txn.last_insert_rowid());
                        }
                    }
                }
            }
        }
        txn.commit().map_err(sqlite_err)?;
        let outbox_rows = batch.outbox.len();
        Ok(Written { stale, outbox: ids.into_iter().zip(batch.outbox).collect(), outbox_rows })
    }
}

fn sqlite_err(e: rusqlite::Error) -> DbErr {
    DbErr::Custom(format!("SQLite: {e}"))
}

/// A sea-query value as SQLite stores it, encoded exactly as sqlx does for the pool's reads (sea-
/// orm decodes these rows): UUIDs as 16-byte blobs, times as RFC 3339 text with as many fraction
/// digits as needed, JSON as text, booleans as 0/1.
fn sqlite_value(v: sea_orm::Value) -> Result<rusqlite::types::Value, DbErr> {
    use chrono::SecondsFormat;
    use rusqlite::types::Value as S;
    use sea_orm::Value as V;
    let int = |i: Option<i64>| i.map_or(S::Null, S::Integer);
    Ok(match v {
        V::Bool(b) => int(b.map(i64::from)),
        V::TinyInt(i) => int(i.map(i64::from)),
        V::SmallInt(i) => int(i.map(i64::from)),
        V::Int(i) => int(i.map(i64::from)),
        V::BigInt(i) => int(i),
        V::TinyUnsigned(i) => int(i.map(i64::from)),
        V::SmallUnsigned(i) => int(i.map(i64::from)),
        V::Unsigned(i) => int(i.map(i64::from)),
        V::BigUnsigned(i) => match i {
            None => S::Null,
            Some(i) => S::Integer(i64::try_from(i).map_err(|_| DbErr::Custom(format!("{i} is too large for SQLite")))?),
        },
        V::Float(f) => f.map_or(S::Null, |f| S::Real(f64::from(f))),
        V::Double(f) => f.map_or(S::Null, S::Real),
        V::String(s) => s.map_or(S::Null, S::Text),
        V::Char(c) => c.map_or(S::Null, |c| S::Text(c.to_string())),
        V::Bytes(b) => b.map_or(S::Null, S::Blob),
        V::Json(j) => j.map_or(S::Null, |j| S::Text(j.to_string())),
        V::Uuid(u) => u.map_or(S::Null, |u| S::Blob(u.as_bytes().to_vec())),
        V::ChronoDateTimeUtc(t) => t.map_or(S::Null, |t| S::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))),
        V::ChronoDateTimeWithTimeZone(t) => {
            t.map_or(S::Null, |t| S::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false)))
        }
        V::ChronoDateTime(t) => t.map_or(S::Null, |t| S::Text(t.format("%F %T%.f").to_string())),
        V::ChronoDate(d) => d.map_or(S::Null, |d| S::Text(d.format("%F").to_string())),
        V::ChronoTime(t) => t.map_or(S::Null, |t| S::Text(t.format("%T%.f").to_string())),
        other => return Err(DbErr::Custom(format!("the SQLite committer cannot store {other:?}"))),
    })
}

/// A batch's statements, and the events of its outbox rows.
struct Statements {
    steps: Vec<Step>,
    /// The events the outbox inserts write, in insert order.
    outbox: Vec<DomainEvent>,
}

/// One step of a batch.
enum Step {
    /// A statement built by sea-query: PostgreSQL's multi-row inserts, and every update.
    Sql(Statement),
    /// SQLite's inserts: one prepared single-row statement, run once per row. With no round trip
    /// to save, a multi-row insert only cost building its text and values anew for every batch
    /// (a tenth of the committer's time); this text is the same for every batch and stays
    /// prepared, and each row's values are bound as they are.
    Rows(Rows),
}

struct Rows {
    sql: String,
    /// The columns the statement sets, in order.
    columns: Vec<&'static str>,
    rows: Vec<Vec<sea_orm::Value>>,
    /// Outbox rows: their rowids are read back for the [`CommitFeed`].
    outbox: bool,
}

/// The statements for a batch: inserts first (orders, tickets, payments, refunds), then
/// updates in submission order, then the outbox rows — last, so their ids follow commit order,
/// which is what the relay publishes by.
fn build_statements<'a>(backend: DbBackend, jobs: impl IntoIterator<Item = &'a Job>) -> Statements {
    let mut new_orders = Vec::new();
    let mut new_tickets = Vec::new();
    let mut new_payments = Vec::new();
    let mut new_refunds = Vec::new();
    let mut new_queue = Vec::new();
    let mut new_listed = Vec::new();
    let mut new_outbox = Vec::new();
    let mut events = Vec::new();
    let mut new_processed = Vec::new();
    let mut new_history = Vec::new();
    let mut updates = Vec::new();
    let now = Utc::now();
    let mut counts: Vec<SlotCounts> = Vec::new();
    let mut counts_at: HashMap<Uuid, usize> = HashMap::new();
    for op in jobs.into_iter().flat_map(|j| j.ops.iter()) {
        match op {
            WriteOp::InsertOrder(m) => new_orders.push(m.clone()),
            WriteOp::InsertTickets(ts) => new_tickets.extend(ts.iter().cloned()),
            WriteOp::InsertPayment(m) => new_payments.push(m.clone()),
            WriteOp::InsertRefund(m) => new_refunds.push(m.clone()),
            WriteOp::InsertQueueEntry(m) => new_queue.push(m.clone()),
            WriteOp::InsertWaitlistEntry(m) => new_listed.push(m.clone()),
            WriteOp::Outbox(e) => {
                new_outbox.push(super::outbox_row(e));
                events.push(e.clone());
            }
            WriteOp::Counts(c) => match counts_at.get(&c.event_id) {
                Some(&i) => counts[i] = *c,
                None => {
                    counts_at.insert(c.event_id, counts.len());
                    counts.push(*c);
                }
            },
            WriteOp::MarkProcessed(rows) => new_processed.extend(rows.iter().cloned()),
            WriteOp::Barrier | WriteOp::Fence(_) => {}
            other => updates.push(other),
        }
    }

    for c in counts {
        let e = DomainEvent::new(c);
        new_outbox.push(super::outbox_row(&e));
        events.push(e);
    }

    let mut out = Vec::new();
    inserts::<orders::Entity>(backend, new_orders, &mut out, &[]);
    inserts::<tickets::Entity>(backend, new_tickets, &mut out, &[]);
    inserts::<payments::Entity>(backend, new_payments, &mut out, &[]);
    inserts::<refunds::Entity>(backend, new_refunds, &mut out, &[]);
    inserts::<queue_entries::Entity>(backend, new_queue, &mut out, &[]);
    inserts::<waitlist_entries::Entity>(backend, new_listed, &mut out, &[]);
    // A consumer's known events are skipped.
    let known = [processed_events::Column::Consumer, processed_events::Column::EventId];
    inserts::<processed_events::Entity>(backend, new_processed, &mut out, &known);
    for op in updates {
        match op {
            // Guarded by the expected current status, so a stale writer changes nothing.
            WriteOp::SetOrderStatus { id, from, to, expires_at, refund_cents } => {
                let mut update = orders::Entity::update_many()
                    .col_expr(orders::Column::Status, Expr::value(to.as_str()))
                    .col_expr(orders::Column::ExpiresAt, Expr::value(*expires_at))
                    .col_expr(orders::Column::UpdatedAt, Expr::value(now));
                if let Some(cents) = refund_cents {
                    update = update.col_expr(orders::Column::RefundCents, Expr::value(*cents));
                }
                let update = update
                    .filter(orders::Column::Id.eq(*id))
                    .filter(orders::Column::Status.is_in(from.iter().map(|s| s.as_str())));
                out.push(Step::Sql(update.build(backend)));
            }
            WriteOp::SetPaymentStatus { id, status, detail, provider_ref } => {
                let mut update = payments::Entity::update_many()
                    .col_expr(payments::Column::Status, Expr::value(status.as_str()))
                    .col_expr(payments::Column::UpdatedAt, Expr::value(now));
                if let Some(r) = provider_ref {
                    update = update.col_expr(payments::Column::ProviderRef, Expr::value(r.clone()));
                }
                if *status == PaymentStatus::Failed {
                    update = update.col_expr(payments::Column::FailureReason, Expr::value(detail.clone()));
                }
                out.push(Step::Sql(update.filter(payments::Column::Id.eq(*id)).build(backend)));
                new_history.push(payment_status_history::ActiveModel {
                    payment_id: Set(*id),
                    status: Set(*status),
                    detail: Set(detail.clone()),
                    at: Set(now),
                    ..Default::default()
                });
            }
            WriteOp::UpdateEvent(m) => {
                let Some(id) = m.id.try_as_ref().copied() else {
                    tracing::error!("event update without an id skipped");
                    continue;
                };
                out.push(Step::Sql(
                    events::Entity::update_many().set(m.clone()).filter(events::Column::Id.eq(id)).build(backend),
                ));
            }
            WriteOp::AdmitQueue { ids, until } => {
                for chunk in ids.chunks(INSERT_CHUNK) {
                    let update = queue_entries::Entity::update_many()
                        .col_expr(queue_entries::Column::AdmittedUntil, Expr::value(*until))
                        .filter(queue_entries::Column::Id.is_in(chunk.iter().copied()));
                    out.push(Step::Sql(update.build(backend)));
                }
            }
            WriteOp::SetWaitlistStatus { id, status, order } => {
                let update = waitlist_entries::Entity::update_many()
                    .col_expr(waitlist_entries::Column::Status, Expr::value(status.as_str()))
                    .col_expr(waitlist_entries::Column::OrderId, Expr::value(*order))
                    .col_expr(waitlist_entries::Column::UpdatedAt, Expr::value(now))
                    .filter(waitlist_entries::Column::Id.eq(*id));
                out.push(Step::Sql(update.build(backend)));
            }
            WriteOp::RelayAdvanced(to) => out.push(Step::Sql(super::outbox::advance(backend, *to))),
            WriteOp::Notification(change) => out.push(Step::Sql(change.statement(backend))),
            _ => unreachable!("inserts were sorted out above"),
        }
    }
    inserts::<payment_status_history::Entity>(backend, new_history, &mut out, &[]);
    // Last, so their ids follow commit order (and SQLite's rowids can be read as they are written).
    let first_outbox = out.len();
    inserts::<outbox::Entity>(backend, new_outbox, &mut out, &[]);
    for step in &mut out[first_outbox..] {
        if let Step::Rows(rows) = step {
            rows.outbox = true;
        }
    }
    Statements { steps: out, outbox: events }
}

/// The inserts of `rows`, skipping a row whose `conflict` columns are taken when there are any:
/// multi-row statements on PostgreSQL (each statement is a round trip), one prepared single-row
/// statement on SQLite (see [`Step::Rows`]).
fn inserts<E: EntityTrait>(backend: DbBackend, rows: Vec<E::ActiveModel>, out: &mut Vec<Step>, conflict: &[E::Column]) {
    if rows.is_empty() {
        return;
    }
    if backend == DbBackend::Sqlite {
        return sqlite_rows::<E>(rows, out, conflict);
    }
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut insert = E::insert_many(rows.by_ref().take(INSERT_CHUNK));
        if !conflict.is_empty() {
            insert = insert.on_conflict(OnConflict::columns(conflict.iter().copied()).do_nothing().to_owned());
        }
        out.push(Step::Sql(insert.build(backend)));
    }
}

/// SQLite's inserts of `rows`: one statement text per set of columns given (a batch's rows of a
/// table are built alike, so that is one text per table), and each row's values.
fn sqlite_rows<E: EntityTrait>(rows: Vec<E::ActiveModel>, out: &mut Vec<Step>, conflict: &[E::Column]) {
    use sea_orm::{ActiveModelTrait, IdenStatic, Iterable};
    let quoted = |c: E::Column| format!("\"{}\"", c.as_str());
    let first = out.len();
    for row in rows {
        let (columns, values): (Vec<E::Column>, Vec<sea_orm::Value>) =
            E::Column::iter().filter_map(|c| row.get(c).into_value().map(|v| (c, v))).unzip();
        // Only this table's steps, the ones pushed here, take more rows.
        if out.len() > first
            && let Some(Step::Rows(last)) = out.last_mut()
            && last.columns.len() == columns.len()
            && last.columns.iter().zip(&columns).all(|(a, b)| *a == b.as_str())
        {
            last.rows.push(values);
            continue;
        }
        let names: Vec<String> = columns.iter().copied().map(quoted).collect();
        let marks = vec!["?"; columns.len()].join(", ");
        let mut sql = format!("INSERT INTO \"{}\" ({}) VALUES ({marks})", E::default().table_name(), names.join(", "));
        if !conflict.is_empty() {
            let target: Vec<String> = conflict.iter().copied().map(quoted).collect();
            sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", target.join(", ")));
        }
        out.push(Step::Rows(Rows {
            sql,
            columns: columns.iter().map(|c| c.as_str()).collect(),
            rows: vec![values],
            outbox: false,
        }));
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::DbBackend;
    use tokio::sync::oneshot;
    use uuid::Uuid;

    use super::{
        CommitFeed, Fence, INSERT_CHUNK, Job, Statement, Step, WriteOp, admitted, build_statements, fences_of,
        stale_fences,
    };
    use crate::domain::{DomainEvent, Payload, SlotCounts, events::UserFacts};

    fn job(ops: Vec<WriteOp>) -> Job {
        Job { ops, done: super::Done::Channel(oneshot::channel().0) }
    }

    /// The statements of PostgreSQL's batch (it has no other steps).
    fn sql(steps: Vec<Step>) -> Vec<Statement> {
        steps
            .into_iter()
            .map(|s| match s {
                Step::Sql(s) => s,
                Step::Rows(r) => panic!("PostgreSQL got SQLite's row inserts: {}", r.sql),
            })
            .collect()
    }

    fn counts(event_id: Uuid, available: u32) -> WriteOp {
        WriteOp::Counts(SlotCounts { event_id, total: 10, available, held: 10 - available, sold: 0 })
    }

    #[test]
    fn a_batch_writes_only_the_last_counts_of_each_event() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let placed = DomainEvent::new(Payload::UserCreated(UserFacts {
            user_id: a,
            email: "a@b.io".into(),
            username: "ann".into(),
            role: crate::domain::Role::User,
        }));
        let jobs = vec![
            job(vec![WriteOp::Outbox(placed.clone()), counts(a, 9)]),
            job(vec![counts(b, 4)]),
            job(vec![counts(a, 7)]),
        ];
        let statements = sql(build_statements(DbBackend::Postgres, &jobs).steps);
        assert_eq!(statements.len(), 1, "one multi-row outbox insert");
        let values = format!("{:?}", statements[0].values);
        let written = |available: u32| values.contains(&format!(r#"\"available\":{available}"#));
        assert!(values.contains(&placed.id.to_string()), "other events are all kept");
        assert!(written(7) && written(4), "the last counts of each event are kept");
        assert!(!written(9), "earlier counts of the same event in the batch are dropped");
        assert_eq!(values.matches("inventory.changed").count(), 2, "one row per event");
    }

    #[test]
    fn a_fenced_job_is_left_out_of_its_batch_and_only_it() {
        let (moved, kept) = (Uuid::now_v7(), Uuid::now_v7());
        let fence = |event_id, epoch| WriteOp::Fence(Fence { event_id, epoch });
        let jobs = vec![
            job(vec![counts(moved, 9), fence(moved, 1)]),
            job(vec![counts(kept, 4), fence(kept, 3)]),
            job(vec![counts(moved, 8), fence(moved, 1)]),
            job(vec![counts(Uuid::now_v7(), 2)]),
        ];
        let fences = fences_of(&jobs);
        assert_eq!(fences.len(), 2, "one check per fenced event, however many jobs it has");
        let current = [(moved, 2), (kept, 3)].into_iter().collect();
        let stale = stale_fences(&fences, &current);
        assert_eq!(stale, vec![Fence { event_id: moved, epoch: 1 }]);
        assert_eq!(admitted(&jobs, &stale).count(), 2, "the current owner's job and the unfenced one");
        let values =
            format!("{:?}", sql(build_statements(DbBackend::Postgres, admitted(&jobs, &stale)).steps)[0].values);
        assert!(!values.contains(&moved.to_string()), "nothing of the stale owner's jobs is written");
        assert!(values.contains(&kept.to_string()));
        assert!(stale_fences(&fences, &Default::default()).len() == 2, "an event without a lease is fenced");
    }

    #[test]
    fn a_batch_says_which_events_its_outbox_rows_carry_in_insert_order() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let user = |user_id| {
            DomainEvent::new(Payload::UserCreated(UserFacts {
                user_id,
                email: "a@b.io".into(),
                username: "ann".into(),
                role: crate::domain::Role::User,
            }))
        };
        let (first, second) = (user(a), user(b));
        let jobs =
            vec![job(vec![WriteOp::Outbox(first.clone()), counts(a, 9)]), job(vec![WriteOp::Outbox(second.clone())])];
        let batch = build_statements(DbBackend::Sqlite, &jobs);
        let ids: Vec<Uuid> = batch.outbox.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), 3, "both events and the batch's inventory.changed");
        assert_eq!(&ids[..2], &[first.id, second.id], "in submission order, the counts last");
        let Some(Step::Rows(rows)) = batch.steps.last() else { panic!("SQLite inserts row by row") };
        assert!(rows.outbox && rows.rows.len() == 3, "the last step inserts exactly those rows, and says so");
        let pg = sql(build_statements(DbBackend::Postgres, &jobs).steps);
        let insert = &pg.last().unwrap().sql;
        assert!(insert.contains("\"payload\"") && !insert.contains("\"tx\""), "`tx` is left to the default: {insert}");
    }

    #[test]
    fn the_feed_hands_the_relay_only_rows_that_continue_its_sequence() {
        let event = |n: i64| {
            (
                n,
                DomainEvent::new(Payload::from(SlotCounts {
                    event_id: Uuid::nil(),
                    total: 1,
                    available: 1,
                    held: 0,
                    sold: 0,
                })),
            )
        };
        let feed = CommitFeed::new();
        feed.committed(vec![event(1)], 1);
        assert!(feed.take_from(1, 100).is_none(), "nothing is kept while no relay listens");
        feed.listen(true);
        feed.committed(vec![event(10), event(11), event(12)], 3);
        assert!(feed.take_from(9, 100).is_none(), "row 9 was written elsewhere: read the store");
        let rows = feed.take_from(10, 2).expect("10 is next");
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [10, 11], "at most the asked number");
        feed.committed(vec![event(14)], 1);
        let rows = feed.take_from(12, 100).expect("12 is next");
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [12], "stops at the gap before 14");
        assert!(feed.take_from(13, 100).is_none(), "13 is not here");
        let rows = feed.take_from(14, 100).expect("rows before the cursor are dropped, 14 follows");
        assert_eq!(rows.len(), 1);
        assert!(feed.take_from(15, 100).is_none(), "nothing left");
    }

    #[test]
    fn postgres_gets_one_statement_per_table_and_sqlite_one_statement_text_per_table() {
        let event = |n| {
            WriteOp::Outbox(DomainEvent::new(Payload::from(SlotCounts {
                event_id: Uuid::nil(),
                total: n,
                available: n,
                held: 0,
                sold: 0,
            })))
        };
        let known = |n: usize| {
            WriteOp::MarkProcessed(
                (0..n)
                    .map(|_| crate::store::entities::processed_events::ActiveModel {
                        consumer: sea_orm::ActiveValue::Set("notifier".into()),
                        event_id: sea_orm::ActiveValue::Set(Uuid::now_v7()),
                        ..Default::default()
                    })
                    .collect(),
            )
        };
        let jobs: Vec<Job> = (0..2500).map(|n| job(vec![event(n)])).chain([job(vec![known(3)])]).collect();
        let pg = sql(build_statements(DbBackend::Postgres, &jobs).steps);
        assert_eq!(pg.len(), 1 + 3, "one processed-events insert, then 2,500 outbox rows in chunks of {INSERT_CHUNK}");
        assert!(pg[0].sql.contains("ON CONFLICT (\"consumer\", \"event_id\") DO NOTHING"), "{}", pg[0].sql);

        let steps = build_statements(DbBackend::Sqlite, &jobs).steps;
        let [Step::Rows(processed), Step::Rows(outbox)] = &steps[..] else { panic!("one step per table") };
        assert_eq!((processed.rows.len(), outbox.rows.len()), (3, 2500));
        assert!(!processed.outbox && outbox.outbox);
        assert!(processed.sql.ends_with("ON CONFLICT (\"consumer\", \"event_id\") DO NOTHING"), "{}", processed.sql);
        assert_eq!(outbox.sql.matches('?').count(), outbox.columns.len(), "one row's values: {}", outbox.sql);
        assert!(outbox.rows.iter().all(|r| r.len() == outbox.columns.len()));
    }
}
