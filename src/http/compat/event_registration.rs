//! The event-registration system (seed 000: a Next.js page and a Fastify gateway in front of a
//! registration service): `POST /registrations {"userId", "eventId"}`, answered
//! `201 {"id", "userId", "eventId", "status"}`.
//!
//! Its page let anyone type any user id; here the token says who is asking, and naming someone
//! else takes the `staff` or `admin` role (box-office staff registering people at the door).
//! `userId` may be a Boxoffice user id, username or e-mail; its integer ids have no meaning here,
//! and get a 422 saying so.

use axum::{Router, extract::State, http::HeaderMap, response::Response, routing::post};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::reshape;
use crate::{
    http::{
        AppState, Error, Result,
        error::ApiJson,
        extract::AuthUser,
        orders::{CreateRegistration, register_free},
    },
    store::entities::users,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/registrations", post(register))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EventRegistration)]
pub struct Registration {
    /// Whom to register: a user id (UUID), username or e-mail. Absent: the caller. Someone else
    /// only for staff and administrators.
    #[serde(rename = "userId", alias = "user_id", default)]
    #[schema(value_type = Option<String>)]
    pub user_id: Option<Value>,
    #[serde(rename = "eventId", alias = "event_id")]
    pub event_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // The answer's shape for the document; the body is built with `json!`.
pub struct RegistrationView {
    id: Uuid,
    #[serde(rename = "userId")]
    user_id: Uuid,
    #[serde(rename = "eventId")]
    event_id: Uuid,
    /// `confirmed`.
    status: String,
}

/// The person `userId` names. Someone the caller may not book for is a 403 whether or not they
/// exist, so the route cannot be used to probe for accounts.
async fn named_person(state: &AppState, caller: AuthUser, named: Option<&Value>) -> Result<Option<Uuid>> {
    let text = match named {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
        Some(Value::Number(_)) => {
            return Err(Error::invalid(
                "userId",
                "Boxoffice user ids are UUIDs (GET /api/v1/users); send the user's id, username or e-mail",
            ));
        }
        Some(_) => return Err(Error::invalid("userId", "must be a user id (UUID), username or e-mail")),
    };
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(Some(id));
    }
    let found = users::Entity::find()
        .filter(users::Column::DeletedAt.is_null())
        .filter(
            Condition::any().add(users::Column::Username.eq(text)).add(users::Column::Email.eq(text.to_lowercase())),
        )
        .one(&state.db)
        .await?;
    match found {
        Some(u) => Ok(Some(u.id)),
        None if caller.may_book_for_others() => Err(Error::not_found("user")),
        None => Err(Error::forbidden("only staff and administrators may book for someone else")),
    }
}

#[utoipa::path(post, path = "/registrations", tag = "compat", request_body = Registration,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first response", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = RegistrationView), (status = 403, description = "naming someone else without the staff role; queue_required"),
        (status = 404, description = "no such event or user"), (status = 409, description = "sold_out, not_free, already_registered")))]
pub(super) async fn register(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<Registration>,
) -> Result<Response> {
    let user_id = named_person(&state, user, req.user_id.as_ref()).await?;
    let core = register_free(&state, user, &headers, CreateRegistration { event_id: req.event_id, user_id }).await?;
    reshape(core, |o| json!({"id": o["id"], "userId": o["user_id"], "eventId": o["event_id"], "status": o["status"]}))
        .await
}

#[cfg(test)]
mod tests {
    use super::Registration;

    #[test]
    fn the_original_body_parses_with_its_integer_user_id_kept_for_the_handler_to_refuse() {
        let r: Registration =
            serde_json::from_str(r#"{"userId": 12, "eventId": "2c79c65b-6083-4b4f-a567-d5ff9b533556"}"#).unwrap();
        assert_eq!(r.user_id, Some(serde_json::json!(12)));
        assert_eq!(r.event_id.to_string(), "2c79c65b-6083-4b4f-a567-d5ff9b533556");
    }
}
