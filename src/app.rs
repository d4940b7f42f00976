//! Start-up and shutdown. [`Application::build`] connects and migrates the database, ensures the
//! admin account and demo data, starts the actors, the committer and the outbox relay, and binds
//! the listener; [`Application::run`] serves until the shutdown signal, then drains in order:
//! HTTP first, then the relay's last pass, then the Kafka consumers (if any), then the actors.
//!
//! Nothing outside the database is waited for at start-up: Kafka topics are ensured in the
//! background (readiness reports it), MongoDB and SMTP are contacted on first use.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use ractor::Actor;
use sea_orm::DatabaseConnection;
use tokio::{net::TcpListener, sync::watch};

use crate::{
    actors::{
        Inventories,
        auditor::Auditor,
        consumer::ActorSubscriber,
        keeper::keep,
        notifier::{self, Notifier, NotifierArgs},
        payment::{PaymentActor, SimulatedProvider},
        saga::{OrderSagas, SagaDeps, Sagas},
        supervisor::{Directory, InventorySupervisor, SupervisorArgs},
    },
    auth::{AuthKeys, Guard},
    bridge::{
        bus::{Bus, Subscriber, Transport},
        kafka::{self, KafkaBridge},
        outbox::{Leadership, OutboxRelay},
    },
    cluster::Cluster,
    config::Config,
    http::{self, AppParts, AppState},
    retry, seed,
    store::{self, mongo::MongoAuditLog},
};

/// How long a consumer actor may take over one batch (SMTP sends, MongoDB writes) before the
/// delivery counts as failed and is retried.
const CONSUMER_CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Application {
    listener: TcpListener,
    /// The gRPC API's, unless `grpc.addr` is empty.
    grpc: Option<TcpListener>,
    state: AppState,
    relay: OutboxRelay,
    /// With Kafka: the consumer groups and the subscriber each one feeds.
    consumers: Vec<(String, Arc<dyn Subscriber>)>,
    actors: Vec<ractor::ActorCell>,
    cluster: Cluster,
    supervisor: ractor::ActorRef<crate::actors::supervisor::SupervisorMsg>,
}

impl Application {
    pub async fn build(mut config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        // From here on the configuration carries the key in use, configured or generated.
        config.auth.jwt_secret = crate::secrets::jwt_secret(&config.auth)?;
        crate::instruments::install();
        let config = Arc::new(config);
        let db = store::connect(config.database.url.expose(), config.database.max_connections)
            .await
            .with_context(|| "cannot open the database (database.url)")?;
        // Nodes started together on an empty database migrate and seed one after another.
        let startup = match config.is_sqlite() {
            true => None,
            false => Some(
                store::advisory::Exclusive::wait(config.database.url.expose(), "boxoffice.startup")
                    .await
                    .context("taking the start-up lock in PostgreSQL (database.url)")?,
            ),
        };
        store::migrate(&db).await.context("migrations failed")?;
        tracing::info!(backend = ?db.get_database_backend(), "database migrated");

        let feed = store::CommitFeed::new();
        let writer =
            store::connect_writer(config.database.url.expose()).await.context("opening the writer connection")?;
        let committer = store::Committer::spawn(writer.clone(), config.database.commit_batch_max, feed.clone())
            .await
            .context("starting the committer")?;
        let timeout = config.actor_timeout();
        let booking = &config.booking;

        let cluster = if config.cluster.enabled {
            Cluster::prepare(&config.cluster, db.clone())
        } else {
            Cluster::single(config.http.addr.to_string())
        };
        let directory = Directory::default();
        let (supervisor, _) = Actor::spawn(
            None,
            InventorySupervisor,
            SupervisorArgs {
                db: db.clone(),
                committer: committer.clone(),
                directory: directory.clone(),
                payment_pin_max: Duration::from_secs(u64::from(booking.payment_pin_max_seconds)),
                passivate_after: (booking.passivate_after_seconds > 0)
                    .then(|| Duration::from_secs(booking.passivate_after_seconds)),
                restart: booking.restart_policy(),
                ownership: cluster.ownership(),
                admission: Duration::from_secs(u64::from(booking.admission_seconds)),
            },
        )
        .await?;
        let forward = cluster.enabled().then(|| cluster.forwarder(timeout));
        let inventories = Inventories { supervisor: supervisor.clone(), directory, timeout, forward };
        let provider = Arc::new(SimulatedProvider::new(Duration::from_millis(config.payment.slow_ms), db.clone()));
        let payments = keep("payment", PaymentActor, provider, booking.restart_policy()).await?;
        let (sagas, _) = Actor::spawn(
            None,
            Sagas,
            SagaDeps {
                db: db.clone(),
                committer: committer.clone(),
                inventories: inventories.clone(),
                payments: payments.clone(),
                charge_timeout: config.charge_timeout(),
                idle: Duration::from_secs(booking.saga_idle_seconds.max(1)),
            },
        )
        .await?;
        let orders = OrderSagas { sagas: sagas.clone(), inventories: inventories.clone() };

        let mailer = notifier::mailer(&config.mail)?;
        let from = config.mail.from.parse().context("mail.from is not a mailbox")?;
        let notifier = keep(
            "notifier",
            Notifier,
            NotifierArgs { db: db.clone(), committer: committer.clone(), mailer, from },
            booking.restart_policy(),
        )
        .await?;
        let audit_log = if config.mongodb.enabled() {
            let log = MongoAuditLog::new(config.mongodb.url.expose(), &config.mongodb.database)
                .await
                .map_err(anyhow::Error::msg)?;
            tracing::info!(database = %config.mongodb.database, "audit log on MongoDB");
            Some(Arc::new(log))
        } else {
            None
        };
        // Without MongoDB the outbox table is the audit log (see `actors::auditor`).
        let auditor = match &audit_log {
            Some(log) => Some(keep("auditor", Auditor, log.clone(), booking.restart_policy()).await?),
            None => None,
        };
        let subscriber = |name: &str, actor| -> Arc<dyn Subscriber> {
            Arc::new(ActorSubscriber { name: name.into(), actor, timeout: CONSUMER_CALL_TIMEOUT })
        };
        let notifier_sub = subscriber("notifier", notifier.clone());
        let auditor_sub = auditor.as_ref().map(|a| subscriber("auditor", a.clone()));
        let (bus, consumers) = if config.kafka.enabled() {
            let bridge = Arc::new(KafkaBridge::new(&config.kafka).context("kafka producer (kafka.brokers)")?);
            tracing::info!(brokers = %config.kafka.brokers, "domain events go through Kafka");
            let mut consumers = vec![(config.kafka.notifier_group.clone(), notifier_sub)];
            consumers.extend(auditor_sub.map(|s| (config.kafka.auditor_group.clone(), s)));
            (Bus::new(Transport::Kafka(bridge)), consumers)
        } else {
            (Bus::in_process([Some(notifier_sub), auditor_sub].into_iter().flatten().collect()), Vec::new())
        };
        let bus = bus.with_fanout(cluster.enabled().then(|| cluster.fanout()));
        if cluster.enabled() {
            cluster.start(&config.cluster, config.database.url.expose(), orders.clone(), bus.clone()).await?;
        }
        let relay = OutboxRelay {
            db: db.clone(),
            committer: committer.clone(),
            bus: bus.clone(),
            feed,
            // The commit signal only reaches a relay on the committing node; with a cluster the
            // publisher finds other nodes' rows by polling, and live streams on every node wait
            // for it, so it polls often (an indexed read of the oldest unpublished rows).
            poll: Duration::from_millis(if cluster.enabled() { 100 } else { 500 }),
            leadership: if config.is_sqlite() {
                Leadership::Always
            } else {
                Leadership::Lock { url: config.database.url.expose().to_owned() }
            },
        };

        let auth = Arc::new(AuthKeys::new(&config.auth)?);
        let guard = Arc::new(Guard::new(db.clone(), &config.limits));
        guard.sync().await.context("loading token revocations")?;
        let state = AppState::new(AppParts {
            db: db.clone(),
            writer,
            config: config.clone(),
            auth,
            guard,
            inventories,
            orders,
            cluster: cluster.clone(),
            bus,
            audit_log,
            ready: Arc::new(AtomicBool::new(false)),
        });
        seed::ensure_admin(&db, &state.auth, &config).await.context("ensuring the admin account")?;
        if config.seed.demo_data {
            seed::demo_data(&db, &config).await.context("seeding demo data")?;
        }
        if let Some(lock) = startup {
            lock.release().await;
        }

        let listener = TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("cannot listen on {} (http.addr)", config.http.addr))?;
        let grpc = match config.grpc.socket_addr() {
            Some(addr) => {
                Some(TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (grpc.addr)"))?)
            }
            None => None,
        };
        let mut actors = vec![sagas.get_cell(), supervisor.get_cell()];
        actors.extend([payments.cells(), notifier.cells()].into_iter().flatten());
        actors.extend(auditor.iter().flat_map(|a| a.cells()));
        Ok(Self { listener, grpc, state, relay, consumers, actors, cluster, supervisor })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Where the gRPC API listens, when it does.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn db(&self) -> DatabaseConnection {
        self.state.db.clone()
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then drains and stops everything.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listener, grpc, state, relay, consumers, actors, cluster, supervisor } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut consumers_task = None;
        if let Transport::Kafka(bridge) = state.bus.transport() {
            // Consumers subscribe once the topics exist, so they never wait on stale metadata.
            let (bridge, stop) = (bridge.clone(), stop_rx.clone());
            consumers_task = Some(tokio::spawn(async move {
                bridge.clone().ensure_topics_until_done(stop.clone()).await;
                let running: Vec<_> = consumers
                    .into_iter()
                    .map(|(group, sub)| {
                        let (bridge, stop) = (bridge.clone(), stop.clone());
                        retry::supervised("kafka_consumer", move || {
                            kafka::run_consumer(bridge.clone(), group.clone(), sub.clone(), stop.clone())
                        })
                    })
                    .collect();
                futures::future::join_all(running).await;
            }));
        }
        // Every long-lived task is supervised: a panic restarts it (retry::supervised).
        let (db, stop) = (state.db.clone(), stop_rx.clone());
        retry::supervised("outbox_watch", move || {
            crate::bridge::outbox::watch_pending(db.clone(), Duration::from_secs(5), stop.clone())
        });
        let (guard, stop) = (state.guard.clone(), stop_rx.clone());
        retry::supervised("auth_maintenance", move || guard.clone().maintain(stop.clone()));
        if let Transport::Kafka(bridge) = state.bus.transport() {
            let (bridge, stop) = (bridge.clone(), stop_rx.clone());
            retry::supervised("kafka_health", move || bridge.clone().watch_health(stop.clone()));
        }
        if let Some(log) = &state.audit_log {
            let (log, stop) = (log.clone(), stop_rx.clone());
            retry::supervised("audit_health", move || log.clone().watch_health(stop.clone()));
        }
        let (keeper, owners, stop) = (cluster.clone(), supervisor.clone(), stop_rx.clone());
        retry::supervised("lease_keeper", move || keeper.clone().upkeep(owners.clone(), stop.clone()));
        let (db, orders, stop) = (state.db.clone(), state.orders.clone(), stop_rx.clone());
        let charge_timeout = state.config.charge_timeout();
        retry::supervised("payment_recovery", move || {
            crate::actors::payment_recovery::sweep_forever(db.clone(), orders.clone(), charge_timeout, stop.clone())
        });
        let relay = Arc::new(relay);
        let relay_task = retry::supervised("outbox_relay", move || relay.clone().run(stop_rx.clone()));
        let ready = state.ready.clone();
        ready.store(true, Ordering::Relaxed);
        let addr = listener.local_addr()?;
        tracing::info!(url = %format!("http://{addr}"), docs = %format!("http://{addr}/docs"), "Boxoffice is listening");
        // gRPC stops taking calls when HTTP does; its open `Watch` streams end with the drain.
        let (grpc_stop, grpc_stopping) = tokio::sync::oneshot::channel::<()>();
        let grpc_task = match grpc {
            Some(listener) => {
                let addr = listener.local_addr()?;
                tracing::info!(addr = %addr, "gRPC is listening");
                let state = state.clone();
                Some(tokio::spawn(async move {
                    if let Err(e) = crate::grpc::serve(listener, state, async move {
                        let _ = grpc_stopping.await;
                    })
                    .await
                    {
                        tracing::error!(error = format!("{e:#}"), "the gRPC server failed");
                    }
                }))
            }
            None => None,
        };
        let budget = state.config.http.shutdown_timeout();
        let header_timeout = state.config.http.header_timeout();
        let max_connections = connections_that_fit(state.config.http.max_connections);
        let app = http::router(state);
        let shutdown_ready = ready.clone();
        let leaving = cluster.clone();
        let (began_tx, began) = tokio::sync::oneshot::channel();
        // Half the shutdown budget for connections to finish, the rest for the relay's last pass
        // and the consumers: shutdown ends within `http.shutdown_timeout_ms` whatever is down.
        http::serve(listener, app, header_timeout, budget / 2, max_connections, async move {
            shutdown.await;
            let _ = began_tx.send(tokio::time::Instant::now());
            shutdown_ready.store(false, Ordering::Relaxed);
            let _ = grpc_stop.send(());
            // Cluster mode: the events go to the other nodes first, while this one still
            // accepts (and forwards) what a load balancer sends before it sees /readyz fail.
            leaving.hand_over(&supervisor, budget / 4).await;
            tracing::info!("shutting down: draining HTTP");
        })
        .await;
        let deadline = began.await.unwrap_or_else(|_| tokio::time::Instant::now()) + budget;
        if let Some(mut task) = grpc_task
            && tokio::time::timeout_at(deadline - budget / 2, &mut task).await.is_err()
        {
            // Open `Watch` streams never end by themselves.
            task.abort();
        }
        let _ = stop_tx.send(true);
        let mut relay_task = relay_task;
        if tokio::time::timeout_at(deadline, &mut relay_task).await.is_err() {
            tracing::warn!("the outbox relay's last pass did not finish in time; its rows stay for the next start");
            relay_task.abort();
        }
        if let Some(mut task) = consumers_task
            && tokio::time::timeout_at(deadline, &mut task).await.is_err()
        {
            tracing::warn!("the Kafka consumers did not stop in time; their offsets stay as last committed");
            task.abort();
        }
        // Cluster mode: the leases go back first, so the other nodes take the events over at
        // once (the fence keeps any write still in flight here from landing after that).
        cluster.leave().await;
        for actor in actors {
            actor.stop(Some("shutdown".into()));
        }
        tracing::info!("stopped");
        Ok(())
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub async fn run(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Descriptors kept for everything but HTTP connections: database pools, Kafka, MongoDB, SMTP,
/// the cluster's sessions, log and data files.
const OTHER_DESCRIPTORS: u64 = 512;

/// `wanted` HTTP connections, or as many as the open-file limit allows once raised as far as this
/// process may (its hard limit), with a warning when that is fewer.
fn connections_that_fit(wanted: usize) -> usize {
    let limit = match raise_file_limit() {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the open-file limit");
            return wanted;
        }
    };
    let room = limit.saturating_sub(OTHER_DESCRIPTORS + http::serve::RESERVED_CONNECTIONS as u64);
    let fit = usize::try_from(room).unwrap_or(usize::MAX).max(1);
    if fit < wanted {
        tracing::warn!(
            max_connections = wanted,
            open_file_limit = limit,
            serving = fit,
            "http.max_connections does not fit in the open-file limit: serving fewer (raise `ulimit -Hn`)"
        );
        return fit;
    }
    wanted
}

/// Raises the soft open-file limit to the hard one (an unprivileged process may) and answers it.
pub fn raise_file_limit() -> std::io::Result<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit read and write only the struct passed to them.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        Ok(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    Ok(u64::MAX)
}

/// Whether the kernel may back this process's memory with transparent huge pages
/// (`runtime.huge_pages`; `boxoffice serve` applies it before its runtime starts).
///
/// Off by default: under a rush the heap keeps growing (every hold lives in its event's
/// inventory) and the allocator keeps taking fresh pages, and with huge pages each first touch
/// makes the kernel zero a whole 2 MiB page. On 2 cores that zeroing was 3.5 % of the server's
/// CPU samples at 64 connections, and turning it off gave 6 % more holds/s (BENCHMARKS.md). The
/// setting is the process's own (`PR_SET_THP_DISABLE`), whatever the system-wide policy says;
/// elsewhere than on Linux there is nothing to set.
pub fn allow_huge_pages(allow: bool) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes a flag and touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, libc::c_ulong::from(!allow), 0, 0, 0) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = allow;
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The process-wide flag as the kernel reports it.
    fn huge_pages_disabled() -> bool {
        // SAFETY: PR_GET_THP_DISABLE only reads the calling process's flag.
        (unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }) == 1
    }

    #[test]
    fn huge_pages_are_turned_off_and_back_on_for_the_process() {
        super::allow_huge_pages(false).expect("prctl");
        assert!(huge_pages_disabled());
        super::allow_huge_pages(true).expect("prctl");
        assert!(!huge_pages_disabled());
    }
}
