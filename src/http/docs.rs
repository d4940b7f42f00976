//! The OpenAPI document (`/openapi.json`) and interactive docs (`/docs`).

use axum::{Json, Router, routing::get};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_scalar::{Scalar, Servable};

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Boxoffice", description = "Ticket booking: events, holds, orders, payments."),
    paths(
        super::auth::register, super::auth::login, super::auth::refresh, super::auth::logout,
        super::users::list, super::users::read, super::users::update, super::users::remove,
        super::health::healthz, super::health::readyz,
        super::catalog::list_categories, super::catalog::create_category,
        super::catalog::list_events, super::catalog::read_event, super::catalog::create_event,
        super::catalog::update_event,
        super::orders::create, super::orders::register, super::orders::list, super::orders::read,
        super::orders::cancel,
        super::payments::create, super::payments::list, super::payments::read,
        super::audit::list, super::streams::availability, super::streams::availability_of_many,
        super::cluster::view, super::cluster::owner,
        super::queues::join, super::queues::mine, super::queues::mine_live,
        super::queues::join_list, super::queues::my_entry, super::queues::leave_list,
    ),
    components(schemas(
        super::auth::RegisterRequest, super::auth::LoginRequest, super::auth::RefreshRequest,
        super::auth::TokenPair, super::users::UserView, super::users::UpdateUser,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .merge(Scalar::with_url("/docs", ApiDoc::openapi()))
}
