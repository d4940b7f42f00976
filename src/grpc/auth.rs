//! `AuthService`: REST's `/api/v1/auth`, over the same functions.

use boxoffice_proto::v1::{self as pb, auth_service_server::AuthService};
use tonic::{Request, Response, Status};

use super::{auth_attempt, convert, headers, measured, status};
use crate::{
    domain::Role,
    http::{
        AppState, RegisterRequest,
        auth::{LoginRequest, TokenPair, create_user, log_in, log_out, refresh_session},
        users::UserView,
    },
};

pub struct Auth(pub AppState);

fn pair(p: TokenPair) -> pb::TokenPair {
    pb::TokenPair {
        access_token: p.access_token,
        refresh_token: p.refresh_token,
        token_type: p.token_type.to_string(),
        expires_in: p.expires_in,
    }
}

#[tonic::async_trait]
impl AuthService for Auth {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::User>, Status> {
        measured("AuthService/Register", async {
            auth_attempt(&self.0, &request)?;
            let r = request.into_inner();
            let birth_day = r
                .birth_day
                .filter(|d| !d.trim().is_empty())
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                        .map_err(|_| status(crate::http::Error::invalid("birth_day", "must be a date, YYYY-MM-DD")))
                })
                .transpose()?;
            let sign_up = RegisterRequest {
                email: r.email,
                username: r.username,
                password: r.password,
                first_name: r.first_name,
                last_name: r.last_name,
                mobile_phone: r.mobile_phone,
                birth_day,
            };
            let user = create_user(&self.0, sign_up, Role::User).await.map_err(status)?;
            Ok(Response::new(convert::user(UserView::from(user))))
        })
        .await
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::TokenPair>, Status> {
        measured("AuthService/Login", async {
            let attempt = auth_attempt(&self.0, &request)?;
            let r = request.into_inner();
            let tokens = log_in(&self.0, attempt, LoginRequest { login: r.login, password: r.password })
                .await
                .map_err(status)?;
            Ok(Response::new(pair(tokens)))
        })
        .await
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Result<Response<pb::TokenPair>, Status> {
        measured("AuthService/Refresh", async {
            auth_attempt(&self.0, &request)?;
            let tokens = refresh_session(&self.0, &request.into_inner().refresh_token).await.map_err(status)?;
            Ok(Response::new(pair(tokens)))
        })
        .await
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        measured("AuthService/Logout", async {
            let headers = headers(&request);
            let token = request.into_inner().refresh_token;
            log_out(&self.0, &headers, Some(&token)).await.map_err(status)?;
            Ok(Response::new(pb::LogoutResponse {}))
        })
        .await
    }
}
