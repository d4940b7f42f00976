//! `ClusterMember`: this node's one remotely reachable actor. Other nodes call it with
//! [`ClusterMsg::Call`]; it decodes the envelope itself (a bad one is answered
//! [`Response::BadRequest`]), drops requests whose sender stopped waiting (a node waking from a
//! pause must not work through a backlog nobody waits for), and serves each request in a task
//! of its own, so one slow event never holds up another event's calls.
//!
//! It also takes [`ClusterMsg::Notice`]s: events the outbox relay's leader published, which it
//! puts on this node's live broadcast (a stale one, from before a pause, is dropped: a stream
//! would show old counts as new), and a peer's word that it is shutting down.

use std::sync::Arc;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, pg};
use tokio::sync::Semaphore;

use super::{
    membership::{GROUP, Peers},
    wire::{ClusterMsg, Envelope, Notice, Request, Response},
};
use crate::{
    actors::{CallError, inventory::InventoryError, saga::OrderSagas},
    bridge::bus::Bus,
    error::Report,
};

/// Requests served at once; more wait for a permit (the callers' timeouts bound the wait).
const IN_FLIGHT: usize = 1024;

pub struct MemberArgs {
    pub me: String,
    pub orders: OrderSagas,
    pub bus: Bus,
    pub peers: Peers,
}

pub struct MemberState {
    me: Arc<str>,
    orders: OrderSagas,
    bus: Bus,
    peers: Peers,
    permits: Arc<Semaphore>,
}

pub struct ClusterMember;

impl Actor for ClusterMember {
    type Msg = ClusterMsg;
    type State = MemberState;
    type Arguments = MemberArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ClusterMsg>,
        args: MemberArgs,
    ) -> Result<MemberState, ActorProcessingErr> {
        pg::join(GROUP.to_owned(), vec![myself.get_cell()]);
        Ok(MemberState {
            me: args.me.into(),
            orders: args.orders,
            bus: args.bus,
            peers: args.peers,
            permits: Arc::new(Semaphore::new(IN_FLIGHT)),
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<ClusterMsg>,
        _state: &mut MemberState,
    ) -> Result<(), ActorProcessingErr> {
        pg::leave(GROUP.to_owned(), vec![myself.get_cell()]);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<ClusterMsg>,
        msg: ClusterMsg,
        state: &mut MemberState,
    ) -> Result<(), ActorProcessingErr> {
        let (bytes, reply) = match msg {
            ClusterMsg::Call(bytes, reply) => (bytes, reply),
            ClusterMsg::Notice(bytes) => {
                notice(state, &bytes);
                return Ok(());
            }
        };
        let envelope = match Envelope::<Request>::from_bytes(&bytes) {
            Ok(e) => e,
            Err(why) => {
                unreadable(&why);
                answer(&state.me, reply, Response::BadRequest { why });
                return Ok(());
            }
        };
        if envelope.expired() {
            tracing::debug!(from = %envelope.from, "dropping a forwarded request nobody waits for any more");
            return Ok(());
        }
        if matches!(envelope.body, Request::Ping) {
            answer(&state.me, reply, Response::Pong);
            return Ok(());
        }
        let (me, orders, permits) = (state.me.clone(), state.orders.clone(), state.permits.clone());
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire().await else { return };
            if envelope.expired() {
                return;
            }
            let response = serve(&orders, envelope.body).await;
            answer(&me, reply, response);
        });
        Ok(())
    }
}

fn unreadable(why: &str) {
    metrics::counter!(crate::instruments::CLUSTER_BAD_MESSAGES).increment(1);
    tracing::warn!(%why, "a cluster message could not be read");
}

fn notice(state: &MemberState, bytes: &[u8]) {
    match Envelope::<Notice>::from_bytes(bytes) {
        Err(why) => unreadable(&why),
        Ok(e) if e.expired() => tracing::debug!(from = %e.from, "dropping a stale notice"),
        Ok(Envelope { body: Notice::Published { events }, .. }) => state.bus.broadcast_live(&events),
        Ok(Envelope { body: Notice::Leaving, from, .. }) => state.peers.leaving(&from),
    }
}

fn answer(me: &str, reply: RpcReplyPort<Vec<u8>>, body: Response) {
    let deadline = Utc::now() + chrono::Duration::seconds(60);
    let _ = reply.send(Envelope::new(me, deadline, body).to_bytes());
}

/// Serves a request on this node's inventories and sagas, never forwarding it further (the caller
/// follows a [`Response::NotOwner`] itself).
async fn serve(orders: &OrderSagas, request: Request) -> Response {
    let inventories = &orders.inventories;
    match request {
        Request::Ping => Response::Pong,
        Request::Reserve { event_id, request } => match inventories.reserve_here(event_id, request, true).await {
            Ok(Ok(reservation)) => Response::Reserved { reservation },
            Ok(Err(error)) => Response::Refused { error },
            Err(e) => failed(e),
        },
        Request::Snapshot { event_id } => match inventories.snapshot_here(event_id, true).await {
            Ok(snapshot) => Response::Snapshot { snapshot },
            Err(e) => failed(e),
        },
        Request::Confirm { event_id, paid } => inventory_done(inventories.confirm_here(event_id, &paid, true).await),
        Request::Reconfigure { event } => inventory_done(inventories.reconfigure_here(event, true).await),
        Request::Pay { order_id, event_id, request, timeout_ms } => {
            let timeout = std::time::Duration::from_millis(timeout_ms);
            match orders.pay_here((order_id, event_id), request, timeout, true).await {
                Ok(result) => Response::from_saga(result, |payment_id| Response::Paid { payment_id }),
                Err(e) => failed(e),
            }
        }
        Request::Cancel { order_id, event_id } => match orders.cancel_here((order_id, event_id), true).await {
            Ok(result) => Response::from_saga(result, |()| Response::Done),
            Err(e) => failed(e),
        },
        Request::Line { event_id, line } => match inventories.line_here(event_id, line, true).await {
            Ok(Ok(answer)) => Response::Line { answer },
            Ok(Err(error)) => Response::Refused { error },
            Err(e) => failed(e),
        },
    }
}

fn inventory_done(result: Result<Result<(), InventoryError>, CallError>) -> Response {
    match result {
        Ok(Ok(())) => Response::Done,
        Ok(Err(error)) => Response::Refused { error },
        Err(e) => failed(e),
    }
}

fn failed(e: CallError) -> Response {
    match e {
        CallError::Elsewhere(owner) => Response::NotOwner { owner },
        CallError::NotFound => Response::NotFound,
        other => Response::Unavailable { why: Report(&other).to_string() },
    }
}
