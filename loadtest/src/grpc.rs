//! The measured requests over gRPC (`--grpc`): each simulated client owns one HTTP/2 channel to
//! Boxoffice's gRPC API (`grpc.addr`) and sends the scenario's calls on it, as the HTTP client
//! owns one HTTP/1.1 connection. Outcomes are tallied under the HTTP status REST answers for the
//! same outcome (OK on PlaceOrder is 201, FAILED_PRECONDITION is 409, ...), so the report, the
//! invariant check and a REST run read alike.

use std::time::Duration;

use anyhow::Context;
use boxoffice_proto::v1::{
    self as pb, booking_service_client::BookingServiceClient, catalog_service_client::CatalogServiceClient,
};
use tonic::{
    Code, Request,
    metadata::{AsciiMetadataValue, MetadataValue},
    transport::{Channel, Endpoint},
};

/// One client's channel and its calls, prepared once.
pub struct GrpcConn {
    booking: BookingServiceClient<Channel>,
    catalog: CatalogServiceClient<Channel>,
    bearer: AsciiMetadataValue,
    event_id: String,
    quantity: i64,
    amount_cents: i64,
}

/// The HTTP status REST gives for the same outcome; `ok` is the success status of the call.
pub fn http_equivalent(code: Code, ok: u16) -> u16 {
    match code {
        Code::Ok => ok,
        Code::InvalidArgument | Code::OutOfRange => 422,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => 409,
        Code::ResourceExhausted => 429,
        Code::Unavailable | Code::DeadlineExceeded => 503,
        _ => 500,
    }
}

impl GrpcConn {
    pub async fn connect(
        url: &str,
        token: &str,
        event_id: uuid::Uuid,
        quantity: u32,
        amount_cents: i64,
    ) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(url.to_owned())
            .with_context(|| format!("--grpc-url {url}"))?
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .with_context(|| format!("connecting to gRPC at {url}"))?;
        Ok(Self {
            booking: BookingServiceClient::new(channel.clone()),
            catalog: CatalogServiceClient::new(channel),
            bearer: MetadataValue::try_from(format!("Bearer {token}"))?,
            event_id: event_id.to_string(),
            quantity: i64::from(quantity),
            amount_cents,
        })
    }

    fn authed<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.metadata_mut().insert("authorization", self.bearer.clone());
        r
    }

    /// A hold: its HTTP-equivalent status and, when granted, the order's id.
    pub async fn place(&mut self) -> (u16, Option<String>) {
        let call = self.authed(pb::PlaceOrderRequest {
            event_id: self.event_id.clone(),
            quantity: self.quantity,
            user_id: None,
        });
        match self.booking.place_order(call).await {
            Ok(order) => (201, Some(order.into_inner().id)),
            Err(s) => (http_equivalent(s.code(), 201), None),
        }
    }

    pub async fn pay(&mut self, order_id: String) -> u16 {
        let call =
            self.authed(pb::PayRequest { order_id, amount_cents: self.amount_cents, card_token: "tok_ok".into() });
        match self.booking.pay(call).await {
            Ok(_) => 201,
            Err(s) => http_equivalent(s.code(), 201),
        }
    }

    pub async fn event(&mut self) -> u16 {
        match self.catalog.get_event(pb::GetEventRequest { id: self.event_id.clone() }).await {
            Ok(_) => 200,
            Err(s) => http_equivalent(s.code(), 200),
        }
    }

    pub async fn events(&mut self) -> u16 {
        match self.catalog.list_events(pb::ListEventsRequest { limit: 20, ..Default::default() }).await {
            Ok(_) => 200,
            Err(s) => http_equivalent(s.code(), 200),
        }
    }
}
