//! The gRPC API (`boxoffice.v1`) through a client generated from the same protos: the booking
//! path, the refusals with their codes and `ErrorInfo`, a `Watch` stream that sees a hold placed
//! over REST, health and reflection, and REST and gRPC together on one hot event.

use std::time::Duration;

use boxoffice_proto::v1::{
    self as pb, auth_service_client::AuthServiceClient, availability_service_client::AvailabilityServiceClient,
    booking_service_client::BookingServiceClient, catalog_service_client::CatalogServiceClient,
};
use reqwest::StatusCode;
use tonic::{Code, Request, metadata::MetadataValue, transport::Channel};
use tonic_types::StatusExt;

use crate::common::TestApp;

async fn channel(app: &TestApp) -> Channel {
    Channel::from_shared(app.grpc.clone()).unwrap().connect().await.expect("the gRPC API is up")
}

/// A request carrying `authorization: Bearer <token>`.
fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", MetadataValue::try_from(format!("Bearer {token}")).unwrap());
    r
}

/// The `ErrorInfo.reason` of a refusal.
fn reason(s: &tonic::Status) -> String {
    s.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

#[tokio::test]
async fn the_booking_path_over_grpc_signs_up_logs_in_holds_pays_and_lists() {
    let app = TestApp::spawn().await;
    let ch = channel(&app).await;
    let mut auth = AuthServiceClient::new(ch.clone());
    let user = auth
        .register(pb::RegisterRequest {
            email: "gina@example.com".into(),
            username: "gina".into(),
            password: "a-long-secret-42".into(),
            birth_day: Some("1990-02-03".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (user.username.as_str(), user.role.as_str(), user.birth_day.as_deref()),
        ("gina", "user", Some("1990-02-03"))
    );
    let tokens = auth
        .login(pb::LoginRequest { login: "gina".into(), password: "a-long-secret-42".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tokens.token_type, "Bearer");
    let token = tokens.access_token.clone();

    let event = app.event(2_500, 5, 600).await;
    let mut catalog = CatalogServiceClient::new(ch.clone());
    let listed =
        catalog.list_events(pb::ListEventsRequest { limit: 10, ..Default::default() }).await.unwrap().into_inner();
    assert!(listed.items.iter().any(|e| e.id == event.to_string()), "{listed:?}");
    let got = catalog.get_event(pb::GetEventRequest { id: event.to_string() }).await.unwrap().into_inner();
    assert_eq!((got.available_slots, got.price_cents, got.total_slots), (5, 2_500, 5));

    let mut booking = BookingServiceClient::new(ch.clone());
    let mut place = authed(pb::PlaceOrderRequest { event_id: event.to_string(), quantity: 2, user_id: None }, &token);
    place.metadata_mut().insert("idempotency-key", MetadataValue::from_static("grpc-order-1"));
    let order = booking.place_order(place).await.unwrap().into_inner();
    assert_eq!((order.status.as_str(), order.quantity, order.amount_cents), ("pending", 2, 5_000));
    assert!(order.expires_at.is_some());
    // The same key again: the same order, not a second hold.
    let mut again = authed(pb::PlaceOrderRequest { event_id: event.to_string(), quantity: 2, user_id: None }, &token);
    again.metadata_mut().insert("idempotency-key", MetadataValue::from_static("grpc-order-1"));
    assert_eq!(booking.place_order(again).await.unwrap().into_inner().id, order.id);
    assert_eq!(app.counts(event).await, (3, 2, 0, 5));

    let payment = booking
        .pay(authed(
            pb::PayRequest { order_id: order.id.clone(), amount_cents: 5_000, card_token: "tok_ok".into() },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(payment.status, "succeeded");
    assert!(payment.history.len() >= 2, "{payment:?}");
    let paid =
        booking.get_order(authed(pb::GetOrderRequest { id: order.id.clone() }, &token)).await.unwrap().into_inner();
    assert_eq!((paid.status.as_str(), paid.tickets.len()), ("confirmed", 2));
    let mine = booking
        .list_orders(authed(pb::ListOrdersRequest { limit: 5, ..Default::default() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.items.iter().map(|o| o.id.clone()).collect::<Vec<_>>(), vec![order.id.clone()]);
    assert_eq!(app.counts(event).await, (3, 0, 2, 5));
    // The same sale over REST.
    let (s, rest) = app.get(&format!("/api/v1/orders/{}", order.id), Some(&token)).await;
    assert_eq!((s, rest["status"].as_str()), (StatusCode::OK, Some("confirmed")));

    // A second hold, cancelled; a free registration; refresh and logout.
    let hold = booking
        .place_order(authed(pb::PlaceOrderRequest { event_id: event.to_string(), quantity: 1, user_id: None }, &token))
        .await
        .unwrap()
        .into_inner();
    let cancelled =
        booking.cancel_order(authed(pb::CancelOrderRequest { id: hold.id }, &token)).await.unwrap().into_inner();
    assert_eq!(cancelled.status, "cancelled");
    let free = app.event(0, 3, 600).await;
    let registration = booking
        .register_free(authed(pb::RegisterFreeRequest { event_id: free.to_string(), user_id: None }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((registration.kind.as_str(), registration.status.as_str()), ("registration", "confirmed"));
    let fresh =
        auth.refresh(pb::RefreshRequest { refresh_token: tokens.refresh_token.clone() }).await.unwrap().into_inner();
    auth.logout(authed(pb::LogoutRequest { refresh_token: fresh.refresh_token }, &fresh.access_token)).await.unwrap();
    let refused = booking.list_orders(authed(pb::ListOrdersRequest::default(), &fresh.access_token)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "a logged-out token: {refused:?}");
}

#[tokio::test]
async fn refusals_carry_the_matching_code_and_the_error_code_as_error_info() {
    let app = TestApp::spawn().await;
    let ch = channel(&app).await;
    let mut booking = BookingServiceClient::new(ch.clone());
    let (_, ann) = app.signup("ann").await;
    let (bob_id, bob) = app.signup("bob").await;
    let event = app.event(1_000, 2, 600).await;
    let place = |q: i64, token: &str| {
        authed(pb::PlaceOrderRequest { event_id: event.to_string(), quantity: q, user_id: None }, token)
    };

    // No token, a bad token.
    let e = booking
        .place_order(Request::new(pb::PlaceOrderRequest { event_id: event.to_string(), quantity: 1, user_id: None }))
        .await
        .unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::Unauthenticated, "unauthorized"), "{e:?}");
    let e = booking.place_order(place(1, "not-a-token")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // A field out of range: INVALID_ARGUMENT naming it.
    let e = booking.place_order(place(0, &ann)).await.unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::InvalidArgument, "validation_failed"), "{e:?}");
    assert_eq!(e.get_details_error_info().unwrap().metadata.get("field").map(String::as_str), Some("quantity"));
    assert!(e.message().starts_with("validation_failed: "), "{}", e.message());
    // Sold out: FAILED_PRECONDITION with `sold_out`.
    let order = booking.place_order(place(2, &ann)).await.unwrap().into_inner();
    let e = booking.place_order(place(1, &bob)).await.unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "sold_out"), "{e:?}");
    // Another user's order is not found; paying it is not found either (it is not theirs to see).
    let e = booking.get_order(authed(pb::GetOrderRequest { id: order.id.clone() }, &bob)).await.unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::NotFound, "not_found"));
    let e = booking
        .pay(authed(
            pb::PayRequest { order_id: order.id.clone(), amount_cents: 2_000, card_token: "tok_ok".into() },
            &bob,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Booking for someone else without the staff role: PERMISSION_DENIED.
    let e = booking
        .place_order(authed(
            pb::PlaceOrderRequest { event_id: event.to_string(), quantity: 1, user_id: Some(bob_id.to_string()) },
            &ann,
        ))
        .await
        .unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::PermissionDenied, "forbidden"));
    // A wrong amount, then paid twice: INVALID_ARGUMENT, then FAILED_PRECONDITION `already_paid`.
    let pay = |amount: i64| {
        authed(pb::PayRequest { order_id: order.id.clone(), amount_cents: amount, card_token: "tok_ok".into() }, &ann)
    };
    assert_eq!(booking.pay(pay(1)).await.unwrap_err().code(), Code::InvalidArgument);
    booking.pay(pay(2_000)).await.unwrap();
    let e = booking.pay(pay(2_000)).await.unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "already_paid"), "{e:?}");
    // An unknown event, an id that is no UUID.
    let e = CatalogServiceClient::new(ch.clone())
        .get_event(pb::GetEventRequest { id: uuid::Uuid::now_v7().to_string() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = CatalogServiceClient::new(ch.clone()).get_event(pb::GetEventRequest { id: "42".into() }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // A wrong password.
    let e = AuthServiceClient::new(ch)
        .login(pb::LoginRequest { login: "ann".into(), password: "wrong-password-1".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn watch_sends_the_counts_then_a_hold_placed_over_rest() {
    let app = TestApp::spawn().await;
    let event = app.event(1_000, 10, 600).await;
    let mut watch = AvailabilityServiceClient::new(channel(&app).await)
        .watch(pb::WatchRequest { event_ids: vec![event.to_string()] })
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), watch.message()).await.unwrap().unwrap().unwrap();
    assert_eq!((first.event_id.clone(), first.available, first.held), (event.to_string(), 10, 0));
    let (_, token) = app.signup("rita").await;
    let (s, _) = app.order(&token, event, 3).await;
    assert_eq!(s, StatusCode::CREATED);
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message()).await.unwrap().unwrap().unwrap();
    assert_eq!((next.available, next.held, next.sold, next.total), (7, 3, 0, 10));
    // Nothing to follow, or an unknown event.
    let mut client = AvailabilityServiceClient::new(channel(&app).await);
    assert_eq!(client.watch(pb::WatchRequest { event_ids: vec![] }).await.unwrap_err().code(), Code::InvalidArgument);
    let unknown = pb::WatchRequest { event_ids: vec![uuid::Uuid::now_v7().to_string()] };
    assert_eq!(client.watch(unknown).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn health_and_reflection_answer_and_calls_are_measured() {
    let app = TestApp::spawn().await;
    let ch = channel(&app).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let serving = tonic_health::pb::HealthCheckRequest { service: "boxoffice.v1.BookingService".into() };
    let status = health.check(serving).await.unwrap().into_inner().status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    // Reflection lists the services, as `grpcurl list` asks.
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(ch.clone());
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection.server_reflection_info(futures::stream::iter(vec![ask])).await.unwrap().into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for s in [
        "boxoffice.v1.AuthService",
        "boxoffice.v1.CatalogService",
        "boxoffice.v1.BookingService",
        "boxoffice.v1.AvailabilityService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == s), "{s} missing from {names:?}");
    }

    let _ = CatalogServiceClient::new(ch).get_event(pb::GetEventRequest { id: uuid::Uuid::now_v7().to_string() }).await;
    let (_, metrics) = app.get("/metrics", None).await;
    let text = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        text.lines().any(|l| l.starts_with("boxoffice_grpc_requests_total")
            && l.contains("method=\"CatalogService/GetEvent\"")
            && l.contains("code=\"NOT_FOUND\"")),
        "no gRPC request counted"
    );
    assert!(text.contains("boxoffice_grpc_request_duration_seconds_bucket{method=\"CatalogService/GetEvent\""));
}

/// Clients on both APIs rush one event; neither oversells, and every granted hold is in the
/// store and the counts.
#[tokio::test]
async fn grpc_and_rest_together_on_one_hot_event_never_oversell() {
    let app = TestApp::spawn().await;
    let total = 25u64;
    let event = app.event(1_000, total as i64, 600).await;
    let mut tokens = Vec::new();
    for i in 0..16 {
        tokens.push(app.signup(&format!("rush{i}")).await.1);
    }
    let ch = channel(&app).await;
    let mut tasks = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let (ch, base, client) = (ch.clone(), app.base.clone(), app.client.clone());
        tasks.push(tokio::spawn(async move {
            let mut granted = 0u64;
            for _ in 0..6 {
                if i % 2 == 0 {
                    let r = BookingServiceClient::new(ch.clone())
                        .place_order(authed(
                            pb::PlaceOrderRequest { event_id: event.to_string(), quantity: 1, user_id: None },
                            &token,
                        ))
                        .await;
                    match r {
                        Ok(_) => granted += 1,
                        Err(e) => assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}"),
                    }
                } else {
                    let res = client
                        .post(format!("{base}/api/v1/orders"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"event_id": event, "quantity": 1}))
                        .send()
                        .await
                        .unwrap();
                    match res.status() {
                        StatusCode::CREATED => granted += 1,
                        other => assert_eq!(other, StatusCode::CONFLICT),
                    }
                }
            }
            granted
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += t.await.unwrap();
    }
    assert_eq!(granted, total, "every seat sold once, none twice");
    let (available, held, sold, all) = app.counts(event).await;
    assert_eq!((available, held + sold, all), (0, total, total));
}

/// Sends whatever bytes it is given as the request message (and ignores any answer's bytes).
#[derive(Default)]
struct RawBytes;

struct RawEncoder;
struct IgnoreDecoder;

impl tonic::codec::Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = IgnoreDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> IgnoreDecoder {
        IgnoreDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for IgnoreDecoder {
    type Item = ();
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        bytes::Buf::advance(buf, bytes::Buf::remaining(buf));
        Ok(Some(()))
    }
}

#[tokio::test]
async fn a_request_that_is_not_protobuf_is_invalid_argument_and_the_server_answers_the_next_one() {
    let app = TestApp::spawn().await;
    let ch = channel(&app).await;
    let mut raw = tonic::client::Grpc::new(ch.clone());
    // Field 1 as a length-delimited string claiming 127 bytes, with 2 behind it; then a bare 0xff.
    for garbage in [vec![0x0a, 0x7f, b'h', b'i'], vec![0xff]] {
        raw.ready().await.unwrap();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/boxoffice.v1.AuthService/Login");
        let err = raw.unary(Request::new(garbage.clone()), path, RawBytes).await.expect_err("garbage is refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{garbage:?}: {err:?}");
        assert!(err.message().contains("not valid protobuf"), "{}", err.message());
    }
    // The connection and the server are fine: a well-formed call on the same channel is answered.
    let refused = AuthServiceClient::new(ch)
        .login(pb::LoginRequest { login: "nobody".into(), password: "not-the-password".into() })
        .await
        .expect_err("an unknown login");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
}

/// Before, a login of up to 4 MB went through (tonic's default limit) and was stored with every refused
/// attempt: 20 of them grew the database by 255 MB (issue 36).
#[tokio::test]
async fn the_auth_service_refuses_a_huge_message_before_decoding_it_and_a_long_login_before_storing_it() {
    let app = TestApp::spawn().await;
    let mut auth = AuthServiceClient::new(channel(&app).await);
    let huge = pb::LoginRequest { login: "a".repeat(1 << 20), password: "x".into() };
    let refused = auth.login(huge).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    let long = pb::LoginRequest { login: "a".repeat(1_000), password: "x".into() };
    let refused = auth.login(long).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("login"), "{refused:?}");
    // The connection still serves.
    let ok =
        auth.login(pb::LoginRequest { login: "admin".into(), password: crate::common::ADMIN_PASSWORD.into() }).await;
    assert!(ok.is_ok(), "{ok:?}");
}
