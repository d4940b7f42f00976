use boxoffice::store::entities::users;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::json;
use uuid::Uuid;

use crate::common::{ADMIN_PASSWORD, TestApp};

#[tokio::test]
async fn register_returns_201_with_the_user_and_never_the_password() {
    let app = TestApp::spawn().await;
    let (s, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "Ann@Example.com", "username": "ann", "password": "password-123",
                   "first_name": "Ann", "mobile_phone": "+44 20 7946 0000"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["email"], "ann@example.com");
    assert_eq!(body["first_name"], "Ann");
    assert_eq!(body["role"], "user");
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
}

#[tokio::test]
async fn registering_a_taken_email_or_username_is_409() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    let (s, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "ann@example.com", "username": "other", "password": "password-123"}),
        )
        .await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("email_taken")));
    let (s, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "x@example.com", "username": "ann", "password": "password-123"}),
        )
        .await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("username_taken")));
}

#[tokio::test]
async fn invalid_sign_up_fields_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"email": "nope", "username": "ann", "password": "password-123"}), "email"),
        (json!({"email": "a@example.com", "username": "a", "password": "password-123"}), "username"),
        (json!({"email": "a@example.com", "username": "ann", "password": "short"}), "password"),
    ] {
        let (s, resp) = app.post("/api/v1/auth/register", None, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{resp}");
        assert_eq!(resp["error"]["field"], field, "{resp}");
    }
}

#[tokio::test]
async fn a_login_body_with_username_instead_of_login_is_422_naming_both_fields() {
    let app = TestApp::spawn().await;
    let (s, body) = app.post("/api/v1/auth/login", None, json!({"username": "ann", "password": "password-123"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "login", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("is required") && message.contains("did you mean `login`"), "{message}");
}

#[tokio::test]
async fn login_accepts_username_or_email_and_rejects_a_wrong_password_with_401() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    for login in ["ann", "ann@example.com", "ANN@example.com"] {
        let (s, body) = app.post("/api/v1/auth/login", None, json!({"login": login, "password": "password-123"})).await;
        assert_eq!(s, StatusCode::OK, "{login}: {body}");
        assert_eq!(body["token_type"], "Bearer");
        assert!(body["expires_in"].as_i64().unwrap() > 0);
        assert!(body["refresh_token"].as_str().unwrap().contains('.'));
    }
    let (s, body) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "wrong-password"})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_reusing_a_spent_token_revokes_its_family_and_its_access_tokens() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    let (_, first) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "password-123"})).await;
    let (_, other) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "password-123"})).await;
    let r1 = first["refresh_token"].clone();
    let (s, second) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": r1})).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], r1);
    let (s, me) = app.get("/api/v1/orders", second["access_token"].as_str()).await;
    assert_eq!(s, StatusCode::OK, "new access token works: {me}");

    // Replaying the spent token fails, and takes the family's newer token down with it.
    let (s, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": r1})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": second["refresh_token"]})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the family is revoked");
    // So are the access tokens issued with it (they would otherwise live on for 15 minutes),
    // and only those: another session of the same person goes on.
    for pair in [&first, &second] {
        let (s, body) = app.get("/api/v1/orders", pair["access_token"].as_str()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (s, _) = app.get("/api/v1/orders", other["access_token"].as_str()).await;
    assert_eq!(s, StatusCode::OK, "another session is not touched");
}

#[tokio::test]
async fn logout_returns_204_and_the_refresh_token_stops_working() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    let (_, pair) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "password-123"})).await;
    let (s, _) = app.post("/api/v1/auth/logout", None, json!({"refresh_token": pair["refresh_token"]})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": pair["refresh_token"]})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_expired_and_forged_tokens_are_401() {
    let app = TestApp::spawn().await;
    let (id, _) = app.signup("ann").await;
    let (s, body) = app.get("/api/v1/orders", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");

    let keys = boxoffice::auth::AuthKeys::new(&app.config.auth).unwrap();
    let now = chrono::Utc::now().timestamp();
    let expired = keys
        .sign(&boxoffice::auth::Claims {
            sub: id,
            role: boxoffice::domain::Role::User,
            iat: now - 100,
            exp: now - 10,
            jti: Uuid::new_v4(),
            generation: 0,
            family: None,
        })
        .unwrap();
    let (s, body) = app.get("/api/v1/orders", Some(&expired)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");

    let mut forged_cfg = app.config.auth.clone();
    forged_cfg.jwt_secret = "another-secret-that-is-long-enough-for-hs256".into();
    let forged = boxoffice::auth::AuthKeys::new(&forged_cfg)
        .unwrap()
        .issue_access(id, boxoffice::domain::Role::Admin, 0, Uuid::now_v7())
        .unwrap();
    let (s, _) = app.get("/api/v1/users", Some(&forged)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_see_and_edit_themselves_but_not_others() {
    let app = TestApp::spawn().await;
    let (ann, ann_token) = app.signup("ann").await;
    let (bob, _) = app.signup("bob").await;
    let (s, body) = app.get(&format!("/api/v1/users/{ann}"), Some(&ann_token)).await;
    assert_eq!((s, body["username"].as_str()), (StatusCode::OK, Some("ann")));
    let (s, _) = app.get(&format!("/api/v1/users/{bob}"), Some(&ann_token)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = app.put(&format!("/api/v1/users/{ann}"), Some(&ann_token), json!({"first_name": "Annie"})).await;
    assert_eq!((s, body["first_name"].as_str()), (StatusCode::OK, Some("Annie")));
    let (s, _) = app.put(&format!("/api/v1/users/{bob}"), Some(&ann_token), json!({"first_name": "Bobby"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = app.put(&format!("/api/v1/users/{ann}"), Some(&ann_token), json!({"username": "bob"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, body) =
        app.put(&format!("/api/v1/users/{bob}"), Some(&app.admin_token), json!({"last_name": "Builder"})).await;
    assert_eq!((s, body["last_name"].as_str()), (StatusCode::OK, Some("Builder")));
}

#[tokio::test]
async fn only_admins_list_users_and_the_list_is_paginated() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signup("ann").await;
    for n in ["bob", "cat", "dan"] {
        app.signup(n).await;
    }
    let (s, _) = app.get("/api/v1/users", Some(&token)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, page1) = app.get("/api/v1/users?limit=2", Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    assert!(page1["previous_token"].is_null());
    let next = page1["next_token"].as_str().expect("more pages");
    let (_, page2) = app.get(&format!("/api/v1/users?limit=2&next_token={next}"), Some(&app.admin_token)).await;
    let names: Vec<_> = page2["items"].as_array().unwrap().iter().map(|u| u["username"].clone()).collect();
    assert_eq!(names.len(), 2);
    let first_names: Vec<_> = page1["items"].as_array().unwrap().iter().map(|u| u["username"].clone()).collect();
    assert!(names.iter().all(|n| !first_names.contains(n)), "pages do not overlap");
    let prev = page2["previous_token"].as_str().expect("a way back");
    let (_, back) = app.get(&format!("/api/v1/users?limit=2&previous_token={prev}"), Some(&app.admin_token)).await;
    assert_eq!(back["items"], page1["items"]);
    let (s, _) = app.get("/api/v1/users?limit=500", Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_deleted_user_cannot_log_in_and_is_gone() {
    let app = TestApp::spawn().await;
    let (ann, token) = app.signup("ann").await;
    let (s, _) = app.request(reqwest::Method::DELETE, &format!("/api/v1/users/{ann}"), Some(&token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "password-123"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app.get(&format!("/api/v1/users/{ann}"), Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn start_up_gives_the_admin_account_the_configured_password_and_role_again() {
    let app = TestApp::spawn().await;
    let (admin_id, hash, _) = stored_admin(&app).await;
    // The account drifted from [admin]: another password (as if the configured one was changed
    // since the account was made) and demoted.
    let (s, body) = app
        .put(&format!("/api/v1/users/{admin_id}"), Some(&app.admin_token), json!({"password": "some-other-password"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    users::Entity::update_many()
        .col_expr(users::Column::Role, Expr::value("user"))
        .filter(users::Column::Id.eq(admin_id))
        .exec(&app.db)
        .await
        .unwrap();
    let (s, _) = app
        .post("/api/v1/auth/login", None, json!({"login": app.config.admin.username, "password": ADMIN_PASSWORD}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (config, dir) = app.stop().await;
    // `start` logs in as the admin with the configured password: it must work again.
    let app = TestApp::start(config, dir).await;
    let (s, _) = app.get("/api/v1/users", Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::OK, "the admin is an admin again");
    let (s, _) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"login": app.config.admin.username, "password": "some-other-password"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the drifted password no longer works");

    // Nothing to fix: the stored hash is left as it is (no re-hash at every start).
    let (_, fixed, role) = stored_admin(&app).await;
    assert_ne!(fixed, hash);
    assert_eq!(role, boxoffice::domain::Role::Admin);
    let (config, dir) = app.stop().await;
    let app = TestApp::start(config, dir).await;
    assert_eq!(stored_admin(&app).await.1, fixed);
}

/// The admin account as stored: (id, password hash, role).
async fn stored_admin(app: &TestApp) -> (Uuid, String, boxoffice::domain::Role) {
    let email = app.config.admin.email.trim().to_lowercase();
    let admin = users::Entity::find().filter(users::Column::Email.eq(email)).one(&app.db).await.unwrap().unwrap();
    (admin.id, admin.password_hash, admin.role)
}

#[tokio::test]
async fn deleting_another_user_is_403_for_a_customer() {
    let app = TestApp::spawn().await;
    let (_, ann) = app.signup("ann").await;
    let (bob, _) = app.signup("bob").await;
    let (s, body) = app.request(reqwest::Method::DELETE, &format!("/api/v1/users/{bob}"), Some(&ann), None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    let (s, _) = app.post("/api/v1/auth/login", None, json!({"login": "bob", "password": "password-123"})).await;
    assert_eq!(s, StatusCode::OK, "bob's account is untouched");
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn with_no_secrets_configured_the_first_start_generates_them_privately_and_later_starts_keep_them() {
    let app = TestApp::spawn_with(|c| {
        c.admin.password = "".into();
        c.auth.jwt_secret = "".into();
    })
    .await;
    // `spawn` logged in as the admin with the password read from its file.
    let password = app.admin_password();
    assert!(password.len() >= 20, "a random password: {password}");
    assert_ne!(password, "change-me-admin");
    #[cfg(unix)]
    {
        assert_eq!(mode_of(&app.config.admin.password_file), 0o600);
        assert_eq!(mode_of(&app.config.auth.jwt_secret_file), 0o600);
    }
    let key = std::fs::read_to_string(&app.config.auth.jwt_secret_file).unwrap();
    let (user, token) = app.signup("ann").await;
    let (admin_id, hash, _) = stored_admin(&app).await;
    // The admin changes the generated password; a restart must not set it back.
    let (s, body) = app
        .put(&format!("/api/v1/users/{admin_id}"), Some(&app.admin_token), json!({"password": "my own phrase 2026"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let (config, dir) = app.stop().await;
    // Logging in with the changed password proves the restart left the account alone.
    let app = TestApp::start_with_admin(config.clone(), dir, Some("my own phrase 2026".into())).await;
    assert_eq!(std::fs::read_to_string(&config.auth.jwt_secret_file).unwrap(), key, "the key is kept");
    let (s, me) = app.get(&format!("/api/v1/users/{user}"), Some(&token)).await;
    assert_eq!(s, StatusCode::OK, "a token from before the restart still verifies: {me}");
    let (_, after, role) = stored_admin(&app).await;
    assert_ne!(after, hash, "the changed password stayed changed");
    assert_eq!(role, boxoffice::domain::Role::Admin);
    assert_eq!(app.admin_password(), password, "the file is not rewritten for an existing account");
}
