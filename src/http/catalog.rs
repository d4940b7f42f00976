//! `/categories` and `/events`: the catalogue. Event writes that touch capacity go through the
//! event's inventory actor, the single writer of its slots; reads carry live counts from it.

use axum::{Router, extract::State, http::StatusCode, response::Response, routing::get};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    AppState, Error, Result,
    error::{ApiJson, ApiPath, ApiQuery, reply},
    extract::{AdminUser, Page, PageParams, paginate, required_text},
};
use crate::{
    actors::inventory::{InventoryError, Snapshot},
    domain::{self, CategoryKind, MAX_PER_PERSON, MAX_PRICE_CENTS, limits, parse_currency},
    error::Unavailable,
    store::{
        self,
        entities::{categories, events},
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/categories", get(list_categories).post(create_category))
        .route("/events", get(list_events).post(create_event))
        .route("/events/{id}", get(read_event).put(update_event))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    pub id: Uuid,
    pub name: String,
    pub kind: CategoryKind,
    pub created_at: DateTime<Utc>,
}

impl From<categories::Model> for CategoryView {
    fn from(c: categories::Model) -> Self {
        Self { id: c.id, name: c.name, kind: c.kind, created_at: c.created_at }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    pub kind: CategoryKind,
}

#[utoipa::path(get, path = "/api/v1/categories", tag = "catalog", security(()), responses((status = 200, body = [CategoryView])))]
async fn list_categories(State(state): State<AppState>) -> Result<Response> {
    let all = categories::Entity::find().order_by_asc(categories::Column::Name).all(&state.db).await?;
    Ok(reply(StatusCode::OK, all.into_iter().map(CategoryView::from).collect::<Vec<_>>()))
}

#[utoipa::path(post, path = "/api/v1/categories", tag = "catalog", request_body = CreateCategory,
    responses((status = 201, body = CategoryView), (status = 409, description = "name taken")))]
async fn create_category(
    State(state): State<AppState>,
    _: AdminUser,
    ApiJson(req): ApiJson<CreateCategory>,
) -> Result<Response> {
    let name = required_text("name", &req.name, limits::CATEGORY_NAME)?;
    let row = categories::Model { id: Uuid::now_v7(), name, kind: req.kind, created_at: Utc::now() };
    store::catalog::insert_category(&state.db, row.clone())
        .await
        .map_err(|e| Error::unless_duplicate(e, "category_exists", "a category with this name exists"))?;
    Ok(reply(StatusCode::CREATED, CategoryView::from(row)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub id: Uuid,
    pub name: String,
    pub category_id: Uuid,
    pub price_cents: i64,
    pub currency: String,
    pub starts_at: DateTime<Utc>,
    pub max_per_order: i32,
    /// Seats one person may hold and have bought for this event; 0 = no limit.
    pub max_per_person: i32,
    pub hold_seconds: i32,
    /// Orders and registrations need an admission from the event's waiting room.
    pub waiting_room: bool,
    /// People the waiting room admits per second.
    pub admit_per_second: i32,
    pub total_slots: u32,
    pub available_slots: u32,
    pub held_slots: u32,
    pub sold_slots: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EventView {
    fn new(e: events::Model, s: Snapshot) -> Self {
        Self {
            id: e.id,
            name: e.name,
            category_id: e.category_id,
            price_cents: e.price_cents,
            currency: e.currency,
            starts_at: e.starts_at,
            max_per_order: e.max_per_order,
            max_per_person: e.max_per_person,
            hold_seconds: e.hold_seconds,
            waiting_room: e.waiting_room,
            admit_per_second: e.admit_per_second,
            total_slots: s.total,
            available_slots: s.available,
            held_slots: s.held,
            sold_slots: s.sold,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventSearch {
    /// Case-insensitive substring of the name, at most 100 characters.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Category id.
    pub category: Option<Uuid>,
    /// Events starting at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Events starting at or before this instant.
    pub to: Option<DateTime<Utc>>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageParams,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// A category whose kind matches the price (free: 0, paid: more).
    pub category_id: Uuid,
    /// Per seat, 0 to 1,000,000,000.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub price_cents: i64,
    /// ISO 4217, e.g. `EUR`.
    #[schema(min_length = 3, max_length = 3)]
    pub currency: String,
    pub starts_at: DateTime<Utc>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub total_slots: i64,
    /// Default 10.
    #[schema(minimum = 1, maximum = 100)]
    pub max_per_order: Option<i64>,
    /// Default `booking.default_hold_seconds`, at most `booking.max_hold_seconds`.
    #[schema(minimum = 1)]
    pub hold_seconds: Option<i64>,
    /// Seats one person may hold and have bought (0 = no limit); default
    /// `booking.default_max_per_person`.
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_per_person: Option<i64>,
    /// Buyers queue in a virtual waiting room and book only once admitted; default `false`.
    pub waiting_room: Option<bool>,
    /// People the waiting room admits per second, 1 to 10,000; default 10.
    #[schema(minimum = 1, maximum = 10_000)]
    pub admit_per_second: Option<i64>,
}

async fn with_counts(state: &AppState, e: events::Model) -> Result<EventView> {
    let s = state.inventories.snapshot(e.id).await?;
    Ok(EventView::new(e, s))
}

#[utoipa::path(get, path = "/api/v1/events", tag = "catalog", params(EventSearch, PageParams), security(()),
    responses((status = 200, body = Page<EventView>)))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    ApiQuery(search): ApiQuery<EventSearch>,
) -> Result<Response> {
    let mut select = events::Entity::find();
    let q = search.q.as_deref().map(|q| domain::one_line(q, limits::SEARCH)).transpose();
    let q = q.map_err(|e| Error::invalid("q", e.to_string()))?;
    if let Some(q) = q.filter(|q| !q.is_empty()) {
        // LIKE is case-sensitive on PostgreSQL; compare lower-cased on both backends. `%` and
        // `_` are searched for as themselves.
        let pattern = LikeExpr::new(format!("%{}%", like_literal(&q.to_lowercase()))).escape('\\');
        select = select.filter(Expr::expr(Func::lower(Expr::col(events::Column::Name))).like(pattern));
    }
    if let Some(c) = search.category {
        select = select.filter(events::Column::CategoryId.eq(c));
    }
    if let Some(from) = search.from {
        select = select.filter(events::Column::StartsAt.gte(from));
    }
    if let Some(to) = search.to {
        select = select.filter(events::Column::StartsAt.lte(to));
    }
    let page = paginate(&state.db, select, events::Column::Id, |e| e.id, &search.page).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for e in page.items {
        items.push(with_counts(&state, e).await?);
    }
    Ok(reply(StatusCode::OK, Page { items, next_token: page.next_token, previous_token: page.previous_token }))
}

#[utoipa::path(get, path = "/api/v1/events/{id}", params(("id" = Uuid, Path, description = "the event's id")), tag = "catalog", security(()),
    responses((status = 200, body = EventView), (status = 404)))]
pub(crate) async fn read_event(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Response> {
    let e = events::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("event"))?;
    Ok(reply(StatusCode::OK, with_counts(&state, e).await?))
}

/// `text` matched as itself inside a LIKE pattern whose escape character is `\`.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Checks an event body and fills defaults; `id`/`created_at` come from the caller.
async fn validate_event(
    state: &AppState,
    req: EventInput,
    id: Uuid,
    created_at: DateTime<Utc>,
) -> Result<events::Model> {
    let name = required_text("name", &req.name, limits::EVENT_NAME)?;
    let category = categories::Entity::find_by_id(req.category_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("category"))?;
    if !(0..=MAX_PRICE_CENTS).contains(&req.price_cents) {
        return Err(Error::invalid("price_cents", format!("must be between 0 and {MAX_PRICE_CENTS}")));
    }
    if category.kind == CategoryKind::Free && req.price_cents != 0 {
        return Err(Error::invalid("price_cents", "events in a free category must cost 0"));
    }
    if category.kind == CategoryKind::Paid && req.price_cents == 0 {
        return Err(Error::invalid("price_cents", "events in a paid category must cost more than 0"));
    }
    let currency = parse_currency(&req.currency).map_err(|m| Error::invalid("currency", m))?;
    if !(1..=1_000_000).contains(&req.total_slots) {
        return Err(Error::invalid("total_slots", "must be between 1 and 1000000"));
    }
    let max_per_order = req.max_per_order.unwrap_or(10);
    if !(1..=100).contains(&max_per_order) {
        return Err(Error::invalid("max_per_order", "must be between 1 and 100"));
    }
    let booking = &state.config.booking;
    let max_per_person = req.max_per_person.unwrap_or(i64::from(booking.default_max_per_person));
    if !(0..=i64::from(MAX_PER_PERSON)).contains(&max_per_person) {
        return Err(Error::invalid("max_per_person", format!("must be between 0 (no limit) and {MAX_PER_PERSON}")));
    }
    let hold_seconds = req.hold_seconds.unwrap_or(i64::from(booking.default_hold_seconds));
    if !(1..=i64::from(booking.max_hold_seconds)).contains(&hold_seconds) {
        return Err(Error::invalid("hold_seconds", format!("must be between 1 and {}", booking.max_hold_seconds)));
    }
    let admit_per_second = req.admit_per_second.unwrap_or(10);
    if !(1..=10_000).contains(&admit_per_second) {
        return Err(Error::invalid("admit_per_second", "must be between 1 and 10000"));
    }
    Ok(events::Model {
        id,
        name,
        category_id: category.id,
        price_cents: req.price_cents,
        currency,
        starts_at: req.starts_at,
        total_slots: req.total_slots as i32,
        max_per_order: max_per_order as i32,
        hold_seconds: hold_seconds as i32,
        max_per_person: max_per_person as i32,
        waiting_room: req.waiting_room.unwrap_or(false),
        admit_per_second: admit_per_second as i32,
        created_at,
        updated_at: Utc::now(),
    })
}

#[utoipa::path(post, path = "/api/v1/events", tag = "catalog", request_body = EventInput,
    responses((status = 201, body = EventView), (status = 404, description = "no such category"), (status = 422)))]
async fn create_event(
    State(state): State<AppState>,
    _: AdminUser,
    ApiJson(req): ApiJson<EventInput>,
) -> Result<Response> {
    let event = validate_event(&state, req, Uuid::now_v7(), Utc::now()).await?;
    store::catalog::insert_event(&state.db, event.clone()).await?;
    Ok(reply(StatusCode::CREATED, with_counts(&state, event).await?))
}

#[utoipa::path(put, path = "/api/v1/events/{id}", params(("id" = Uuid, Path, description = "the event's id")), tag = "catalog", request_body = EventInput,
    responses((status = 200, body = EventView), (status = 409, description = "capacity below held + sold")))]
pub(super) async fn update_event(
    State(state): State<AppState>,
    _: AdminUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<EventInput>,
) -> Result<Response> {
    let current = events::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("event"))?;
    let event = validate_event(&state, req, id, current.created_at).await?;
    if (current.price_cents == 0) != (event.price_cents == 0) {
        return Err(Error::conflict("pricing_model_change", "an event cannot switch between free and paid"));
    }
    match state.inventories.reconfigure(event.clone()).await? {
        Ok(()) => Ok(reply(StatusCode::OK, with_counts(&state, event).await?)),
        Err(InventoryError::CapacityBelowCommitted { committed }) => Err(Error::conflict(
            "capacity_below_committed",
            format!("total_slots cannot drop below the {committed} seats already held or sold"),
        )),
        Err(e) => Err(Unavailable::because("the event's inventory", e).into()),
    }
}
