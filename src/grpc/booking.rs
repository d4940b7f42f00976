//! `BookingService`: REST's orders, registrations and payments, over the same handlers and core
//! calls (`idempotency-key` metadata is the `Idempotency-Key` header).

use axum::extract::State;
use boxoffice_proto::v1::{self as pb, booking_service_server::BookingService};
use tonic::{Request, Response, Status};

use super::{caller, catalog::page, convert, headers, measured, status};
use crate::http::{
    AppState,
    error::{ApiPath, ApiQuery},
    orders::{self, CreateOrder, CreateRegistration},
    payments::{self, CreatePayment},
};

pub struct Booking(pub AppState);

#[tonic::async_trait]
impl BookingService for Booking {
    async fn place_order(&self, request: Request<pb::PlaceOrderRequest>) -> Result<Response<pb::Order>, Status> {
        measured("BookingService/PlaceOrder", async {
            let user = caller(&self.0, &request).await?;
            let headers = headers(&request);
            let r = request.into_inner();
            let order = CreateOrder {
                event_id: convert::id("event_id", &r.event_id)?,
                quantity: r.quantity,
                user_id: r.user_id.as_deref().map(|u| convert::id("user_id", u)).transpose()?,
            };
            // Without a key there is nothing to replay: the view itself, no JSON body in between.
            let view = if headers.contains_key(crate::http::extract::IDEMPOTENCY_KEY) {
                let answer = orders::place_order(&self.0, user, &headers, order).await.map_err(status)?;
                convert::body(answer).await?
            } else {
                orders::place_order_view(&self.0, user, order).await.map_err(status)?
            };
            Ok(Response::new(convert::order(view)))
        })
        .await
    }

    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> Result<Response<pb::Order>, Status> {
        measured("BookingService/GetOrder", async {
            let user = caller(&self.0, &request).await?;
            let id = convert::id("id", &request.into_inner().id)?;
            let answer = orders::read(State(self.0.clone()), user, ApiPath(id)).await.map_err(status)?;
            Ok(Response::new(convert::order(convert::body(answer).await?)))
        })
        .await
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        measured("BookingService/ListOrders", async {
            let user = caller(&self.0, &request).await?;
            let r = request.into_inner();
            let params = page(r.limit, r.next_token, r.previous_token);
            let answer = orders::list(State(self.0.clone()), user, ApiQuery(params)).await.map_err(status)?;
            Ok(Response::new(convert::orders(convert::body(answer).await?)))
        })
        .await
    }

    async fn cancel_order(&self, request: Request<pb::CancelOrderRequest>) -> Result<Response<pb::Order>, Status> {
        measured("BookingService/CancelOrder", async {
            let user = caller(&self.0, &request).await?;
            let id = convert::id("id", &request.into_inner().id)?;
            let answer = orders::cancel(State(self.0.clone()), user, ApiPath(id)).await.map_err(status)?;
            Ok(Response::new(convert::order(convert::body(answer).await?)))
        })
        .await
    }

    async fn register_free(&self, request: Request<pb::RegisterFreeRequest>) -> Result<Response<pb::Order>, Status> {
        measured("BookingService/RegisterFree", async {
            let user = caller(&self.0, &request).await?;
            let headers = headers(&request);
            let r = request.into_inner();
            let registration = CreateRegistration {
                event_id: convert::id("event_id", &r.event_id)?,
                user_id: r.user_id.as_deref().map(|u| convert::id("user_id", u)).transpose()?,
            };
            let answer = orders::register_free(&self.0, user, &headers, registration).await.map_err(status)?;
            Ok(Response::new(convert::order(convert::body(answer).await?)))
        })
        .await
    }

    async fn pay(&self, request: Request<pb::PayRequest>) -> Result<Response<pb::Payment>, Status> {
        measured("BookingService/Pay", async {
            let user = caller(&self.0, &request).await?;
            let headers = headers(&request);
            let r = request.into_inner();
            let payment = CreatePayment {
                order_id: convert::id("order_id", &r.order_id)?,
                amount_cents: r.amount_cents,
                card_token: r.card_token,
            };
            let answer = payments::pay(&self.0, user, &headers, payment).await.map_err(status)?;
            Ok(Response::new(convert::payment(convert::body(answer).await?)))
        })
        .await
    }
}
