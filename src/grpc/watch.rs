//! `AvailabilityService.Watch`: REST's availability stream as a server stream — each event's
//! counts now, then every change (`inventory.changed` on the bus, so in cluster mode changes
//! made on any node), with the counts read again after a lag.

use std::pin::Pin;

use boxoffice_proto::v1::{self as pb, availability_service_server::AvailabilityService};
use futures::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{client_address, convert, measured, status};
use crate::{
    domain::{DomainEvent, Payload, SlotCounts},
    http::{AppState, streams},
};

pub struct Availability(pub AppState);

type Counts = Pin<Box<dyn Stream<Item = Result<pb::Availability, Status>> + Send>>;

fn message(c: &SlotCounts) -> pb::Availability {
    pb::Availability {
        event_id: c.event_id.to_string(),
        total: c.total,
        available: c.available,
        held: c.held,
        sold: c.sold,
    }
}

#[tonic::async_trait]
impl AvailabilityService for Availability {
    type WatchStream = Counts;

    async fn watch(&self, request: Request<pb::WatchRequest>) -> Result<Response<Counts>, Status> {
        let state = self.0.clone();
        measured("AvailabilityService/Watch", async move {
            let permit = state.guard.open_stream(client_address(&state, &request)).map_err(|e| status(e.into()))?;
            let mut ids: Vec<Uuid> = Vec::new();
            for raw in &request.into_inner().event_ids {
                let id = convert::id("event_ids", raw)?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            streams::check_followed(&state, &ids, "event_ids").await.map_err(status)?;
            // Subscribe before reading the counts, so no change falls between the two.
            let live = state.bus.subscribe_live();
            let first: Vec<SlotCounts> =
                streams::counts(&state, &ids).await.into_iter().collect::<Result<_, _>>().map_err(status)?;
            let first = futures::stream::iter(first.iter().map(|c| Ok(message(c))).collect::<Vec<_>>());
            let changes = futures::stream::unfold((state, live, ids), |(state, mut live, ids)| async move {
                loop {
                    match live.recv().await {
                        Ok(DomainEvent { payload: Payload::InventoryChanged(c), .. }) if ids.contains(&c.event_id) => {
                            return Some((futures::stream::iter(vec![Ok(message(&c))]), (state, live, ids)));
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => {
                            let now: Vec<_> = streams::counts(&state, &ids)
                                .await
                                .into_iter()
                                .flatten()
                                .map(|c| Ok(message(&c)))
                                .collect();
                            return Some((futures::stream::iter(now), (state, live, ids)));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            });
            // The permit lives as long as the stream (`limits.streams_per_address`).
            let stream: Counts = Box::pin(first.chain(changes.flatten()).map(move |m| {
                let _held = &permit;
                m
            }));
            Ok(Response::new(stream))
        })
        .await
    }
}
