//! Who is in the cluster, and how to reach them.
//!
//! Each node runs ractor_cluster's `NodeServer` and a [`Membership`] actor that dials the seeds
//! and redials any seed without a session (ractor_cluster has no reconnect of its own), with the
//! one backoff ([`crate::retry::Backoff`]) per address. A session that has not finished its
//! handshake within [`HANDSHAKE`] is closed (the library has no timeout: a silent socket would keep
//! a session for ever), and one that fails the cookie check never becomes ready.
//!
//! A peer is *connected* once its session is ready (remote actors and process groups are synced
//! then), and *up* while it also answered a ping within [`UP_WINDOW`]: the library's own pings
//! never time out, so a frozen (`SIGSTOP`ped) peer would otherwise look alive for ever.
//!
//! Remote actors are found through the process group [`GROUP`], not the named registry (which is
//! local only): each node's [`super::member::ClusterMember`] is named `boxoffice.member.<node>`,
//! and a remote member keeps its name, so the group maps straight to node names.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    time::Duration,
};

use ractor::{Actor, ActorProcessingErr, ActorRef, pg};
use ractor_cluster::{NodeEventSubscription, NodeServerMessage, node::NodeServerSessionInformation};
use tokio::time::Instant;

use super::wire::ClusterMsg;
use crate::retry::Backoff;

/// The process group every node's member actor joins.
pub const GROUP: &str = "boxoffice.members";

/// A session that is not ready this long after it opened is closed.
pub const HANDSHAKE: Duration = Duration::from_secs(5);
/// A connected peer is up while its last answered ping is at most this old.
pub const UP_WINDOW: Duration = Duration::from_secs(3);
/// How often sessions are checked, seeds redialled and peers pinged.
const TICK: Duration = Duration::from_millis(500);
/// One dial (TCP and TLS) may take this long.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// The actor name of `node`'s member.
pub fn member_name(node: &str) -> String {
    format!("boxoffice.member.{node}")
}

/// The node name in a ractor_cluster peer name (`name@host`).
fn node_of(peer_name: &str) -> &str {
    peer_name.split_once('@').map_or(peer_name, |(n, _)| n)
}

/// A peer as the rest of the node sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    pub node: String,
    pub address: String,
    pub up: bool,
}

#[derive(Debug, Clone)]
struct Peer {
    address: String,
    /// Ready sessions to this peer (both sides may dial; the library elects one, briefly two).
    sessions: HashSet<u64>,
    last_pong: Option<Instant>,
    /// It said it is shutting down: connected (it still serves what it owns until it is gone)
    /// but not up, so placement sends it nothing new. Cleared when its sessions are gone.
    leaving: bool,
}

/// The peers, shared with request handlers (read without a round trip to the actor).
#[derive(Clone, Default)]
pub struct Peers(Arc<RwLock<HashMap<String, Peer>>>);

impl Peers {
    /// Every peer that has ever connected, and whether it is up now.
    pub fn members(&self) -> Vec<Member> {
        let Ok(peers) = self.0.read() else { return Vec::new() };
        let mut out: Vec<Member> = peers
            .iter()
            .map(|(node, p)| Member { node: node.clone(), address: p.address.clone(), up: p.is_up() })
            .collect();
        out.sort_by(|a, b| a.node.cmp(&b.node));
        out
    }

    /// The names of the peers that are up.
    pub fn up(&self) -> Vec<String> {
        self.members().into_iter().filter(|m| m.up).map(|m| m.node).collect()
    }

    pub fn is_up(&self, node: &str) -> bool {
        self.0.read().ok().and_then(|p| p.get(node).map(Peer::is_up)).unwrap_or(false)
    }

    /// `node` announced its graceful shutdown (see [`super::Cluster::hand_over`]).
    pub fn leaving(&self, node: &str) {
        tracing::info!(peer = %node, "cluster peer is shutting down; placing nothing more on it");
        self.update(|peers| {
            if let Some(p) = peers.get_mut(node) {
                p.leaving = true;
            }
        });
    }

    fn update(&self, f: impl FnOnce(&mut HashMap<String, Peer>)) {
        if let Ok(mut peers) = self.0.write() {
            f(&mut peers);
        }
        metrics::gauge!(crate::instruments::CLUSTER_MEMBERS_UP).set(self.up().len() as f64);
    }

    /// The membership gauges, every tick: a peer stops being up when its pongs stop, with no
    /// event to update on. `expected`: the other nodes among the seeds.
    fn publish(&self, expected: usize) {
        let members = self.members();
        let up = members.iter().filter(|m| m.up).count();
        metrics::gauge!(crate::instruments::CLUSTER_MEMBERS_UP).set(up as f64);
        metrics::gauge!(crate::instruments::CLUSTER_MEMBERS).set(members.len().max(expected) as f64);
    }
}

impl Peer {
    fn is_up(&self) -> bool {
        !self.leaving && !self.sessions.is_empty() && self.last_pong.is_some_and(|t| t.elapsed() <= UP_WINDOW)
    }
}

/// The remote member actor of `node`, if its session is ready.
pub fn remote_member(node: &str) -> Option<ActorRef<ClusterMsg>> {
    let want = member_name(node);
    pg::get_members(&GROUP.to_owned())
        .into_iter()
        .find(|c| !c.get_id().is_local() && c.get_name().as_deref() == Some(want.as_str()))
        .map(ActorRef::from)
}

pub enum MembershipMsg {
    Opened(NodeServerSessionInformation),
    Ready(NodeServerSessionInformation),
    Closed(NodeServerSessionInformation),
    Tick,
    Dialled { address: String, ok: bool },
    Pong { node: String, ok: bool },
}

impl ractor::Message for MembershipMsg {}

/// Forwards the node server's events to the membership actor (the callbacks are synchronous
/// and run inside the node server: they only send).
struct Events(ActorRef<MembershipMsg>);

impl NodeEventSubscription for Events {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.cast(MembershipMsg::Opened(ses));
    }
    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.cast(MembershipMsg::Closed(ses));
    }
    fn node_session_authenticated(&self, _ses: NodeServerSessionInformation) {}
    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.cast(MembershipMsg::Ready(ses));
    }
}

pub struct MembershipArgs {
    pub node: ActorRef<NodeServerMessage>,
    pub me: String,
    pub advertise: String,
    pub seeds: Vec<String>,
    pub peers: Peers,
    /// Mutual TLS for the connections this node dials (`None`: plain TCP).
    pub tls: Option<tokio_rustls::TlsConnector>,
    /// Pings a peer's member; true if it answered in time.
    pub ping: Arc<dyn Fn(String) -> futures::future::BoxFuture<'static, bool> + Send + Sync>,
}

struct Seed {
    backoff: Backoff,
    attempt: u32,
    next: Instant,
    dialling: bool,
}

pub struct MembershipState {
    args: MembershipArgs,
    seeds: HashMap<String, Seed>,
    /// Sessions not ready yet, by node id, with when they opened.
    pending: HashMap<u64, (Instant, NodeServerSessionInformation)>,
    pinging: HashSet<String>,
}

pub struct Membership;

impl Actor for Membership {
    type Msg = MembershipMsg;
    type State = MembershipState;
    type Arguments = MembershipArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<MembershipMsg>,
        args: MembershipArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.node.cast(NodeServerMessage::SubscribeToEvents {
            id: "boxoffice.membership".into(),
            subscription: Box::new(Events(myself.clone())),
        })?;
        myself.send_interval(TICK, || MembershipMsg::Tick);
        let seeds = args
            .seeds
            .iter()
            .filter(|s| **s != args.advertise)
            .map(|s| {
                let seed = Seed {
                    backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(5)),
                    attempt: 0,
                    next: Instant::now(),
                    dialling: false,
                };
                (s.clone(), seed)
            })
            .collect();
        let _ = myself.cast(MembershipMsg::Tick);
        Ok(MembershipState { args, seeds, pending: HashMap::new(), pinging: HashSet::new() })
    }

    async fn handle(
        &self,
        myself: ActorRef<MembershipMsg>,
        msg: MembershipMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MembershipMsg::Opened(ses) => {
                state.pending.insert(ses.node_id, (Instant::now(), ses));
            }
            MembershipMsg::Ready(ses) => {
                state.pending.remove(&ses.node_id);
                let Some(name) = &ses.peer_name else { return Ok(()) };
                let node = node_of(&name.name).to_owned();
                let address = name.connection_string.clone();
                if let Some(seed) = state.seeds.get_mut(&address) {
                    seed.attempt = 0;
                }
                tracing::info!(peer = %node, %address, "cluster peer connected");
                state.args.peers.update(|peers| {
                    let peer = peers.entry(node).or_insert_with(|| Peer {
                        address: address.clone(),
                        sessions: HashSet::new(),
                        last_pong: None,
                        leaving: false,
                    });
                    peer.address = address;
                    peer.sessions.insert(ses.node_id);
                    // Ready means it passed the cookie check and answered the handshake just now.
                    peer.last_pong = Some(Instant::now());
                });
            }
            MembershipMsg::Closed(ses) => {
                let was_pending = state.pending.remove(&ses.node_id).is_some();
                if was_pending {
                    // Never ready: a wrong cookie, a handshake that stalled, or not a peer at all.
                    metrics::counter!(crate::instruments::CLUSTER_REFUSED_SESSIONS).increment(1);
                    tracing::warn!(peer_addr = %ses.peer_addr, "a cluster connection closed before it was ready (wrong cookie, stall or garbage)");
                }
                if let Some(name) = &ses.peer_name {
                    let node = node_of(&name.name).to_owned();
                    state.args.peers.update(|peers| {
                        if let Some(p) = peers.get_mut(&node)
                            && p.sessions.remove(&ses.node_id)
                            && p.sessions.is_empty()
                        {
                            // Whatever comes back under this name is a new run.
                            p.leaving = false;
                            tracing::warn!(peer = %node, "cluster peer disconnected");
                        }
                    });
                }
            }
            MembershipMsg::Tick => state.tick(&myself),
            MembershipMsg::Dialled { address, ok } => {
                if let Some(seed) = state.seeds.get_mut(&address) {
                    seed.dialling = false;
                    if !ok {
                        seed.attempt += 1;
                        seed.next = Instant::now() + seed.backoff.delay_for(seed.attempt);
                    }
                }
            }
            MembershipMsg::Pong { node, ok } => {
                state.pinging.remove(&node);
                if ok {
                    state.args.peers.update(|peers| {
                        if let Some(p) = peers.get_mut(&node) {
                            p.last_pong = Some(Instant::now());
                        }
                    });
                }
            }
        }
        Ok(())
    }
}

impl MembershipState {
    fn tick(&mut self, myself: &ActorRef<MembershipMsg>) {
        self.args.peers.publish(self.seeds.len());
        // Close sessions stuck in the handshake (silent sockets, stalled peers).
        let stuck: Vec<u64> =
            self.pending.iter().filter(|(_, (at, _))| at.elapsed() > HANDSHAKE).map(|(id, _)| *id).collect();
        for id in stuck {
            if let Some((_, ses)) = self.pending.remove(&id) {
                tracing::warn!(peer_addr = %ses.peer_addr, "closing a cluster connection that never finished its handshake");
                metrics::counter!(crate::instruments::CLUSTER_REFUSED_SESSIONS).increment(1);
                ses.actor.stop(Some("handshake_timeout".into()));
            }
        }
        // Redial seeds without a ready session.
        let connected: HashSet<String> = self
            .args
            .peers
            .0
            .read()
            .map(|p| p.values().filter(|p| !p.sessions.is_empty()).map(|p| p.address.clone()).collect())
            .unwrap_or_default();
        let now = Instant::now();
        for (address, seed) in &mut self.seeds {
            if connected.contains(address) || seed.dialling || seed.next > now {
                continue;
            }
            seed.dialling = true;
            // Assume failure until the session is ready: a dial that connects but never becomes
            // ready (a wrong cookie) backs off like one that fails.
            seed.attempt += 1;
            seed.next = now + seed.backoff.delay_for(seed.attempt).max(HANDSHAKE);
            let (node, address, me) = (self.args.node.clone(), address.clone(), myself.clone());
            let tls = self.args.tls.clone();
            tokio::spawn(async move {
                let ok = dial(&node, &address, tls).await;
                let _ = me.cast(MembershipMsg::Dialled { address, ok });
            });
        }
        // Ping connected peers.
        let names: Vec<String> = self
            .args
            .peers
            .0
            .read()
            .map(|p| p.iter().filter(|(_, p)| !p.sessions.is_empty()).map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        for node in names {
            if !self.pinging.insert(node.clone()) {
                continue;
            }
            let (ping, me) = (self.args.ping.clone(), myself.clone());
            tokio::spawn(async move {
                let ok = ping(node.clone()).await;
                let _ = me.cast(MembershipMsg::Pong { node, ok });
            });
        }
    }
}

async fn dial(node: &ActorRef<NodeServerMessage>, address: &str, tls: Option<tokio_rustls::TlsConnector>) -> bool {
    // The library's connect has no timeout of its own.
    let attempt = async {
        match tls {
            None => ractor_cluster::client_connect(node, address).await.map_err(|e| e.to_string()),
            Some(connector) => {
                let name = super::tls::server_name(address).ok_or("the seed's host is not a valid TLS name")?;
                ractor_cluster::client_connect_enc(node, address, connector, name).await.map_err(|e| e.to_string())
            }
        }
    };
    match tokio::time::timeout(DIAL_TIMEOUT, attempt).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(%address, error = %e, "cluster dial failed");
            false
        }
        Err(_) => {
            tracing::debug!(%address, "cluster dial timed out");
            false
        }
    }
}
