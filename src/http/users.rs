//! `/users`: the account directory. Admins list everyone; a user reads, edits and deletes their
//! own account (admins any).

use axum::{Router, extract::State, http::StatusCode, response::Response, routing::get};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    AppState, Error, Result,
    error::{ApiJson, ApiPath, ApiQuery, reply},
    extract::{AccountAccess, AdminUser, AuthUser, PageParams, optional_text, paginate, phone_number},
};
use crate::{
    domain::{Email, Password, Role, Username},
    store::{self, entities::users},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/users", get(list)).route("/users/{id}", get(read).put(update).delete(remove))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub mobile_phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub birth_day: Option<NaiveDate>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<users::Model> for UserView {
    fn from(u: users::Model) -> Self {
        Self {
            id: u.id,
            email: u.email,
            username: u.username,
            first_name: u.first_name,
            last_name: u.last_name,
            mobile_phone: u.mobile_phone,
            birth_day: u.birth_day,
            role: u.role,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(schema_with = crate::http::docs::schema::email_or_null)]
    pub email: Option<String>,
    /// 3 to 32 letters, digits, `_`, `-` or `.`.
    #[schema(schema_with = crate::http::docs::schema::username_or_null)]
    pub username: Option<String>,
    /// 10 to 128 characters, not a common password, not containing the username or e-mail
    /// (old or new). Ends every session of the account.
    #[schema(schema_with = crate::http::docs::schema::password_or_null)]
    pub password: Option<String>,
    #[schema(schema_with = crate::http::docs::schema::name_or_null)]
    pub first_name: Option<String>,
    #[schema(schema_with = crate::http::docs::schema::name_or_null)]
    pub last_name: Option<String>,
    /// Digits, spaces and `+ - ( )`.
    #[schema(schema_with = crate::http::docs::schema::phone_or_null)]
    pub mobile_phone: Option<String>,
    /// `YYYY-MM-DD`, in the past.
    pub birth_day: Option<NaiveDate>,
    /// `user`, `staff` or `admin`; administrators only, and not their own.
    pub role: Option<Role>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageParams),
    responses((status = 200, body = crate::http::extract::Page<UserView>), (status = 403, description = "admins only")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _: AdminUser,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Response> {
    let select = users::Entity::find().filter(users::Column::DeletedAt.is_null());
    let page = paginate(&state.db, select, users::Column::Id, |u| u.id, &page).await?;
    Ok(reply(StatusCode::OK, page.map(UserView::from)))
}

async fn find_live(state: &AppState, id: Uuid) -> Result<users::Model> {
    users::Entity::find_by_id(id)
        .filter(users::Column::DeletedAt.is_null())
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("user"))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", params(("id" = Uuid, Path, description = "the user's id")), tag = "users",
    responses((status = 200, body = UserView), (status = 403, description = "neither that user nor an admin"), (status = 404)))]
pub(crate) async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    user.require_self_or_admin(id)?;
    Ok(reply(StatusCode::OK, UserView::from(find_live(&state, id).await?)))
}

#[utoipa::path(put, path = "/api/v1/users/{id}", params(("id" = Uuid, Path, description = "the user's id")), tag = "users", request_body = UpdateUser,
    responses((status = 200, body = UserView), (status = 403), (status = 404), (status = 409, description = "duplicate_user"),
        (status = 422)))]
pub(super) async fn update(
    State(state): State<AppState>,
    AccountAccess { user, id }: AccountAccess,
    ApiJson(req): ApiJson<UpdateUser>,
) -> Result<Response> {
    if let Some(role) = req.role {
        user.require_admin()?;
        // The last administrator could otherwise lock everyone out of the admin API.
        if id == user.id && role != Role::Admin {
            return Err(Error::Forbidden {
                code: "own_role",
                message: "administrators cannot change their own role".into(),
            });
        }
    }
    let current = find_live(&state, id).await?;
    // The password may contain neither the account's old names nor its new ones.
    let personal =
        [&current.username, &current.email, req.username.as_deref().unwrap_or(""), req.email.as_deref().unwrap_or("")];
    let personal: Vec<&str> = personal.iter().map(|s| s.as_ref()).collect();
    let password = req
        .password
        .as_deref()
        .map(|p| Password::parse(p, &personal))
        .transpose()
        .map_err(|msg| Error::invalid("password", msg))?;
    let mut m: users::ActiveModel = current.into();
    if let Some(e) = req.email {
        m.email = Set(Email::parse(&e).map_err(|msg| Error::invalid("email", msg))?.as_str().to_string());
    }
    if let Some(u) = req.username {
        m.username = Set(Username::parse(&u).map_err(|msg| Error::invalid("username", msg))?.as_str().to_string());
    }
    if let Some(p) = password {
        m.password_hash = Set(state.auth.hash_password(p.expose().to_string()).await?);
    }
    if req.first_name.is_some() {
        m.first_name = Set(optional_text("first_name", req.first_name, crate::domain::limits::PERSON_NAME)?);
    }
    if req.last_name.is_some() {
        m.last_name = Set(optional_text("last_name", req.last_name, crate::domain::limits::PERSON_NAME)?);
    }
    if req.mobile_phone.is_some() {
        m.mobile_phone = Set(phone_number(req.mobile_phone)?);
    }
    if let Some(day) = req.birth_day {
        m.birth_day = Set(Some(checked_birth_day(day)?));
    }
    if let Some(role) = req.role {
        m.role = Set(role);
    }
    m.updated_at = Set(Utc::now());
    let updated = store::accounts::update_user(&state.db, m).await.map_err(|e| {
        Error::unless_duplicate(e, "duplicate_user", "that e-mail or username belongs to another account")
    })?;
    // A new password ended the account's sessions, a new role changes what its tokens may do:
    // this node must not trust its cached state (others re-read within the guard's TTL).
    state.guard.forget(id);
    Ok(reply(StatusCode::OK, UserView::from(updated)))
}

/// A birthday in the past, after 1900.
pub fn checked_birth_day(day: NaiveDate) -> Result<NaiveDate> {
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date");
    if day < earliest || day > Utc::now().date_naive() {
        return Err(Error::invalid("birth_day", "must be a date between 1900-01-01 and today"));
    }
    Ok(day)
}

/// Deletion keeps the row (orders and payments refer to it) but ends every session and frees
/// nothing else: the account can no longer log in, its tokens are refused, and it is gone from
/// the API.
#[utoipa::path(delete, path = "/api/v1/users/{id}", params(("id" = Uuid, Path, description = "the user's id")), tag = "users",
    responses((status = 204, description = "deleted, sessions ended"), (status = 403), (status = 404)))]
async fn remove(State(state): State<AppState>, user: AuthUser, ApiPath(id): ApiPath<Uuid>) -> Result<StatusCode> {
    user.require_self_or_admin(id)?;
    let current = find_live(&state, id).await?;
    store::accounts::delete_user(&state.db, &current, Utc::now()).await?;
    state.guard.forget(id);
    Ok(StatusCode::NO_CONTENT)
}
