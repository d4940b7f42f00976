//! Cluster mode: N Boxoffice nodes on one PostgreSQL act as one system.
//!
//! - **Ownership** ([`crate::actors::ownership`], [`crate::store::leases`]): each event is run by
//!   one node at a time, under a lease in the database with an epoch; every commit that changes
//!   the event's slots is fenced by that epoch ([`crate::store::committer`]), so a node that lost
//!   its lease (dead, frozen, cut off) can never commit a hold, whatever its memory says.
//! - **Membership** ([`membership`]): ractor_cluster sessions between the nodes, dialled and
//!   redialled by us, with our own liveness pings.
//! - **Forwarding** ([`Forwarder`], [`member`], [`wire`]): a request for an event another node
//!   owns is sent to that node's member actor as a ractor_cluster call, with the same timeout and
//!   the same answers as a local call; an event nobody owns goes to the node rendezvous hashing
//!   ranks first among those up ([`Placement`]).
//! - **Live streams** ([`Cluster::fanout`]): the node that publishes the outbox passes each batch
//!   to every peer as a [`Notice`], so SSE and WebSocket streams on any node see every change.
//! - **Graceful shutdown** ([`Cluster::hand_over`], then [`Cluster::leave`]): a stopping node
//!   tells its peers, hands its events over before it drains HTTP, and forwards what still
//!   reaches it.
//! - **Upkeep** ([`Cluster::upkeep`]): leases are renewed every third of their TTL; a lost lease
//!   stops its inventory, and an event that placement now sends to a returning node is handed
//!   over (its lease released, no waiting out the TTL). Shutdown releases every lease.
//!
//! Single-node mode starts none of this: [`Cluster::single`] only answers `/api/v1/cluster`.

pub mod member;
pub mod membership;
pub mod tls;
pub mod wire;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use chrono::Utc;
use futures::future::BoxFuture;
use ractor::{Actor, ActorRef, rpc::CallResult};
use ractor_cluster::{IncomingEncryptionMode, NodeServer, NodeServerMessage, node::NodeConnectionMode};
use tokio::{sync::watch, time::Instant};
use uuid::Uuid;

use crate::{
    actors::{
        CallError, Forward,
        inventory::{InventoryError, LineAnswer, LineOp, Reservation, ReserveRequest, Snapshot},
        ownership::{Ownership, Placement, rendezvous},
        saga::{OrderSagas, PayRequest, SagaError},
        supervisor::SupervisorMsg,
    },
    bridge::bus::{Bus, Fanout},
    config::ClusterConfig,
    domain::{DomainEvent, events::PaymentSucceeded},
    error::Unavailable,
    instruments,
    store::{advisory::Exclusive, entities::events},
};
use member::{ClusterMember, MemberArgs};
use membership::{Member, Membership, MembershipArgs, Peers, remote_member};
use tls::Tls;
use wire::{ClusterMsg, Envelope, Notice, Request, Response};

/// This node's view of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    name: String,
    address: String,
    peers: Peers,
    ownership: Option<Ownership>,
    actors: std::sync::Mutex<Vec<ractor::ActorCell>>,
    /// The TLS accept loop, when there is one.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The connection that holds this node's name (see [`claim_name`]).
    name_claim: std::sync::Mutex<Option<Exclusive>>,
}

/// `GET /api/v1/cluster`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    pub enabled: bool,
    pub node: String,
    pub members: Vec<Member>,
    pub owned_events: usize,
}

impl Cluster {
    /// Single-node mode: one member, itself.
    pub fn single(address: String) -> Self {
        let name = crate::config::host_name();
        Self::new(false, name, address, Peers::default(), None)
    }

    fn new(enabled: bool, name: String, address: String, peers: Peers, ownership: Option<Ownership>) -> Self {
        let inner = Inner {
            enabled,
            name,
            address,
            peers,
            ownership,
            actors: Default::default(),
            tasks: Default::default(),
            name_claim: Default::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Cluster mode, first half: this node's leases and placement, for the inventory supervisor.
    pub fn prepare(config: &ClusterConfig, db: sea_orm::DatabaseConnection) -> Self {
        let peers = Peers::default();
        let name = config.node_name();
        let placement = Arc::new(RendezvousPlacement { me: name.clone(), peers: peers.clone() });
        let ownership = Ownership::new(db, name.clone(), config.lease_ttl(), placement);
        Self::new(true, name, config.advertise().to_owned(), peers, Some(ownership))
    }

    pub fn enabled(&self) -> bool {
        self.inner.enabled
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn ownership(&self) -> Option<Ownership> {
        self.inner.ownership.clone()
    }

    /// The transport to other nodes, for [`Inventories::forward`].
    pub fn forwarder(&self, timeout: Duration) -> Arc<dyn Forward> {
        Arc::new(Forwarder { me: self.inner.name.clone().into(), timeout })
    }

    /// Passes what this node's outbox relay publishes to the other nodes' live streams.
    pub fn fanout(&self) -> Arc<dyn Fanout> {
        Arc::new(PeerFanout { me: self.inner.name.clone().into(), peers: self.inner.peers.clone() })
    }

    /// Cluster mode, second half: the node server, this node's member actor (serving `orders`,
    /// feeding peers' notices to `bus`) and the membership actor that dials the seeds.
    pub async fn start(
        &self,
        config: &ClusterConfig,
        database_url: &str,
        orders: OrderSagas,
        bus: Bus,
    ) -> anyhow::Result<()> {
        let claim = claim_name(database_url, &self.inner.name).await?;
        if let Ok(mut slot) = self.inner.name_claim.lock() {
            *slot = Some(claim);
        }
        let listen: std::net::SocketAddr = config.listen.trim().parse().context("cluster.listen")?;
        let host = config.advertise().rsplit_once(':').map_or(config.advertise(), |(h, _)| h).to_owned();
        let tls = Tls::load(config)?;
        // With TLS our own loop accepts on `listen` (see the tls module); the node server's
        // listener then takes an unused loopback port, and demands TLS there too.
        let (port, ip, incoming) = match &tls {
            None => (listen.port(), listen.ip(), None),
            Some(t) => (0, std::net::Ipv4Addr::LOCALHOST.into(), Some(IncomingEncryptionMode::Tls(t.acceptor.clone()))),
        };
        let server = NodeServer::new(
            port,
            config.cookie.expose().to_owned(),
            self.inner.name.clone(),
            host,
            incoming,
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(ip)
        // Our envelopes are small; a peer (or a stranger) announcing more is cut off.
        .with_max_inbound_frame_size(1 << 20);
        let (node, _) = Actor::spawn(None, server, ())
            .await
            .with_context(|| format!("cannot start the cluster server on {listen} (cluster.listen)"))?;
        if let Some(t) = &tls {
            // Peers know this node by its public port, not the loopback one (queued after the
            // listener's own report of it, so this one stands).
            node.cast(NodeServerMessage::PortChanged { port: listen.port() })?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} (cluster.listen)"))?;
            let (listener, acceptor, server) = (Arc::new(listener), t.acceptor.clone(), node.clone());
            let accept = crate::retry::supervised("cluster_accept", move || {
                tls::accept(listener.clone(), acceptor.clone(), server.clone())
            });
            if let Ok(mut tasks) = self.inner.tasks.lock() {
                tasks.push(accept);
            }
        }
        let (member, _) = Actor::spawn(
            Some(membership::member_name(&self.inner.name)),
            ClusterMember,
            MemberArgs { me: self.inner.name.clone(), orders, bus, peers: self.inner.peers.clone() },
        )
        .await
        .context("starting the cluster member")?;
        let me: Arc<str> = self.inner.name.clone().into();
        let ping = Arc::new(move |node: String| -> BoxFuture<'static, bool> {
            let me = me.clone();
            Box::pin(async move {
                matches!(call(&me, &node, Request::Ping, Duration::from_secs(1)).await, Ok(Response::Pong))
            })
        });
        let (membership, _) = Actor::spawn(
            None,
            Membership,
            MembershipArgs {
                node: node.clone(),
                me: self.inner.name.clone(),
                advertise: config.advertise().to_owned(),
                seeds: config.seeds.clone(),
                peers: self.inner.peers.clone(),
                tls: tls.map(|t| t.connector),
                ping,
            },
        )
        .await
        .context("starting cluster membership")?;
        tracing::info!(node = %self.inner.name, %listen, seeds = ?config.seeds, tls = config.tls(), "cluster node started");
        if let Ok(mut actors) = self.inner.actors.lock() {
            actors.extend([membership.get_cell(), member.get_cell(), node.get_cell()]);
        }
        Ok(())
    }

    /// Renews leases, stops inventories whose lease was lost and hands over the events placement
    /// sends elsewhere, every third of the lease TTL, until `stop`.
    pub async fn upkeep(self, supervisor: ActorRef<SupervisorMsg>, mut stop: watch::Receiver<bool>) {
        let Some(ownership) = self.ownership() else { return };
        let every = ownership.ttl() / 3;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            for event in ownership.renew_all().await {
                let _ = supervisor.cast(SupervisorMsg::HandOver(event));
            }
            for event in ownership.misplaced() {
                tracing::info!(%event, "handing the event over to the node placement prefers");
                let _ = supervisor.cast(SupervisorMsg::HandOver(event));
            }
        }
    }

    /// Graceful shutdown, first step (before the HTTP drain): this node takes no event any more,
    /// tells its peers to place nothing new on it, and hands every event it owns over: each
    /// inventory stops after the messages it already took, then its lease goes back, and the next
    /// request for the event starts it on a peer. Waits at most `within` for that. Requests that
    /// still reach this node are forwarded to the new owners; during the switch a caller may get
    /// a 503 with `Retry-After`, never a lost answer (a write the fence refused was not granted).
    pub async fn hand_over(&self, supervisor: &ActorRef<SupervisorMsg>, within: Duration) {
        let Some(ownership) = &self.inner.ownership else { return };
        ownership.leave();
        tell_peers(&self.inner.name, &self.inner.peers, Notice::Leaving);
        let events = ownership.events();
        for event in &events {
            let _ = supervisor.cast(SupervisorMsg::HandOver(*event));
        }
        let until = Instant::now() + within;
        while ownership.count() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(events = events.len(), still_owned = ownership.count(), "shutting down: events handed over");
    }

    /// Graceful shutdown, last step: give every lease still held back (the others take the
    /// events over at once), then leave the cluster.
    pub async fn leave(&self) {
        if let Some(ownership) = &self.inner.ownership {
            ownership.release_all().await;
        }
        let actors = self.inner.actors.lock().map(|mut a| std::mem::take(&mut *a)).unwrap_or_default();
        for actor in actors {
            actor.stop(Some("shutdown".into()));
        }
        for task in self.inner.tasks.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default() {
            task.abort();
        }
        // Dropping the connection gives the name back.
        drop(self.inner.name_claim.lock().map(|mut c| c.take()));
    }

    pub fn view(&self) -> ClusterView {
        let mut members = vec![Member { node: self.inner.name.clone(), address: self.inner.address.clone(), up: true }];
        members.extend(self.inner.peers.members());
        ClusterView {
            enabled: self.inner.enabled,
            node: self.inner.name.clone(),
            members,
            owned_events: self.inner.ownership.as_ref().map_or(0, Ownership::count),
        }
    }
}

/// Claims this node's name for as long as the process lives: a PostgreSQL session-level advisory
/// lock on the name, held by a connection of its own (not a pooled one, which the pool could
/// recycle and so let go of the lock). Two live processes under one name would share its leases
/// and so defeat the fence: the second refuses to start. A node that dies drops its connection and
/// with it the claim, so its replacement starts at once; a frozen one keeps it, being still that
/// node.
async fn claim_name(database_url: &str, name: &str) -> anyhow::Result<Exclusive> {
    let claim = Exclusive::try_take(database_url, &format!("boxoffice.node:{name}"), None)
        .await
        .context("claiming the node name in PostgreSQL (database.url)")?;
    claim.with_context(|| {
        format!("cluster.node_name {name:?} is in use by another running node; every node needs a name of its own")
    })
}

/// Events nobody owns go to the node rendezvous hashing ranks first among the nodes up.
struct RendezvousPlacement {
    me: String,
    peers: Peers,
}

impl Placement for RendezvousPlacement {
    fn preferred_elsewhere(&self, event: Uuid) -> Option<String> {
        let up = self.peers.up();
        let best = rendezvous(event, up.iter().map(String::as_str).chain([self.me.as_str()]))?;
        (best != self.me).then(|| best.to_owned())
    }

    fn best_peer(&self, event: Uuid) -> Option<String> {
        let up = self.peers.up();
        rendezvous(event, up.iter().map(String::as_str)).map(str::to_owned)
    }
}

/// A notice older than this is dropped by its receiver (see [`member`]).
const NOTICE_TTL: Duration = Duration::from_secs(2);
/// Events per notice, so a large relay batch stays far below the frame limit.
const NOTICE_EVENTS: usize = 256;

struct PeerFanout {
    me: Arc<str>,
    peers: Peers,
}

impl Fanout for PeerFanout {
    fn published(&self, events: &[DomainEvent]) {
        for chunk in events.chunks(NOTICE_EVENTS) {
            tell_peers(&self.me, &self.peers, Notice::Published { events: chunk.to_vec() });
        }
    }
}

/// Sends `notice` to every peer that is up, without waiting (one that went away misses it).
fn tell_peers(me: &str, peers: &Peers, notice: Notice) {
    let members: Vec<_> = peers.up().iter().filter_map(|node| remote_member(node)).collect();
    if members.is_empty() {
        return;
    }
    let bytes = Envelope::new(me, Utc::now() + NOTICE_TTL, notice).to_bytes();
    for member in &members {
        let _ = member.cast(ClusterMsg::Notice(bytes.clone()));
    }
}

/// Sends one request to `node`'s member and decodes the answer.
async fn call(me: &str, node: &str, request: Request, timeout: Duration) -> Result<Response, CallError> {
    let Some(member) = remote_member(node) else {
        return Err(Unavailable::new("the event's owner node is not connected").into());
    };
    let bytes = Envelope::new(me, Utc::now() + timeout, request).to_bytes();
    match member.call(|reply| ClusterMsg::Call(bytes, reply), Some(timeout)).await {
        Ok(CallResult::Success(bytes)) => Envelope::<Response>::from_bytes(&bytes)
            .map(|e| e.body)
            .map_err(|why| Unavailable::because("the owner node's answer", RemoteError(why)).into()),
        Ok(CallResult::Timeout) => Err(CallError::Timeout),
        Ok(CallResult::SenderError) | Err(_) => {
            Err(Unavailable::new("the connection to the owner node dropped").into())
        }
    }
}

/// What a remote node said went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RemoteError(String);

/// Forwarded calls to the owner node (see the module docs).
struct Forwarder {
    me: Arc<str>,
    timeout: Duration,
}

impl Forwarder {
    fn send<R: Send + 'static>(
        &self,
        node: String,
        request: Request,
        answer: fn(Response) -> Option<R>,
    ) -> BoxFuture<'static, Result<R, CallError>> {
        self.send_within(node, request, self.timeout, answer)
    }

    fn send_within<R: Send + 'static>(
        &self,
        node: String,
        request: Request,
        timeout: Duration,
        answer: fn(Response) -> Option<R>,
    ) -> BoxFuture<'static, Result<R, CallError>> {
        let me = self.me.clone();
        Box::pin(async move {
            let started = Instant::now();
            let result = match call(&me, &node, request, timeout).await {
                Ok(response) => decode(response, answer),
                Err(e) => Err(e),
            };
            let outcome = match &result {
                Ok(_) => "ok",
                Err(CallError::Elsewhere(_)) => "redirected",
                Err(CallError::Timeout) => "timeout",
                Err(_) => "unavailable",
            };
            metrics::counter!(instruments::CLUSTER_FORWARDED, "outcome" => outcome).increment(1);
            metrics::histogram!(instruments::CLUSTER_FORWARD_DURATION).record(started.elapsed().as_secs_f64());
            result
        })
    }
}

fn decode<R>(response: Response, answer: fn(Response) -> Option<R>) -> Result<R, CallError> {
    match response {
        Response::NotOwner { owner } => Err(CallError::Elsewhere(owner)),
        Response::NotFound => Err(CallError::NotFound),
        Response::Unavailable { why } => Err(Unavailable::because("the event's owner node", RemoteError(why)).into()),
        Response::BadRequest { why } => {
            Err(Unavailable::because("the owner node refused the call", RemoteError(why)).into())
        }
        other => answer(other).ok_or_else(|| Unavailable::new("the owner node answered something else").into()),
    }
}

impl Forward for Forwarder {
    fn reserve(
        &self,
        node: String,
        event_id: Uuid,
        req: ReserveRequest,
    ) -> BoxFuture<'static, Result<Result<Reservation, InventoryError>, CallError>> {
        let request = Request::Reserve { event_id, request: req };
        self.send(node, request, |r| match r {
            Response::Reserved { reservation } => Some(Ok(reservation)),
            Response::Refused { error } => Some(Err(error)),
            _ => None,
        })
    }

    fn snapshot(&self, node: String, event_id: Uuid) -> BoxFuture<'static, Result<Snapshot, CallError>> {
        self.send(node, Request::Snapshot { event_id }, |r| match r {
            Response::Snapshot { snapshot } => Some(snapshot),
            _ => None,
        })
    }

    fn confirm(
        &self,
        node: String,
        event_id: Uuid,
        paid: PaymentSucceeded,
    ) -> BoxFuture<'static, Result<Result<(), InventoryError>, CallError>> {
        self.send(node, Request::Confirm { event_id, paid }, inventory_done)
    }

    fn reconfigure(
        &self,
        node: String,
        event: events::Model,
    ) -> BoxFuture<'static, Result<Result<(), InventoryError>, CallError>> {
        self.send(node, Request::Reconfigure { event }, inventory_done)
    }

    fn pay(
        &self,
        node: String,
        (order_id, event_id): (Uuid, Uuid),
        request: PayRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Result<Uuid, SagaError>, CallError>> {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let request = Request::Pay { order_id, event_id, request, timeout_ms };
        // The owner's own bound plus one more lookup's worth, so its answer arrives before ours runs out.
        self.send_within(node, request, timeout + self.timeout, |r| match r {
            Response::Paid { payment_id } => Some(Ok(payment_id)),
            Response::OrderRefused { error } => Some(Err(error.into())),
            _ => None,
        })
    }

    fn line(
        &self,
        node: String,
        event_id: Uuid,
        op: LineOp,
    ) -> BoxFuture<'static, Result<Result<LineAnswer, InventoryError>, CallError>> {
        self.send(node, Request::Line { event_id, line: op }, |r| match r {
            Response::Line { answer } => Some(Ok(answer)),
            Response::Refused { error } => Some(Err(error)),
            _ => None,
        })
    }

    fn cancel(
        &self,
        node: String,
        (order_id, event_id): (Uuid, Uuid),
    ) -> BoxFuture<'static, Result<Result<(), SagaError>, CallError>> {
        self.send(node, Request::Cancel { order_id, event_id }, |r| match r {
            Response::Done => Some(Ok(())),
            Response::OrderRefused { error } => Some(Err(error.into())),
            _ => None,
        })
    }
}

fn inventory_done(response: Response) -> Option<Result<(), InventoryError>> {
    match response {
        Response::Done => Some(Ok(())),
        Response::Refused { error } => Some(Err(error)),
        _ => None,
    }
}
