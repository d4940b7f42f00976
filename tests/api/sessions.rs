//! Tokens that die with their user and their session, and logins that resist guessing.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::TestApp;

async fn login_pair(app: &TestApp, login: &str, password: &str) -> Value {
    let (s, pair) = app.post("/api/v1/auth/login", None, json!({"login": login, "password": password})).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    pair
}

fn access(pair: &Value) -> &str {
    pair["access_token"].as_str().unwrap()
}

#[tokio::test]
async fn a_deleted_users_access_token_no_longer_books_and_a_deleted_admins_no_longer_administers() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (ann, token) = app.signup("ann").await;
    assert_eq!(app.order(&token, event, 1).await.0, StatusCode::CREATED);
    let (s, _) = app.request(Method::DELETE, &format!("/api/v1/users/{ann}"), Some(&app.admin_token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = app.order(&token, event, 1).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a deleted user's token booked: {body}");
    assert_eq!(app.counts(event).await, (9, 1, 0, 10));

    let (s, users) = app.get("/api/v1/users", Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::OK, "{users}");
    let admin_id = users["items"].as_array().unwrap().iter().find(|u| u["role"] == "admin").unwrap()["id"].clone();
    let path = format!("/api/v1/users/{}", admin_id.as_str().unwrap());
    assert_eq!(app.request(Method::DELETE, &path, Some(&app.admin_token), None).await.0, StatusCode::NO_CONTENT);
    let (s, body) = app.get("/api/v1/users", Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the deleted admin's token still works: {body}");
}

#[tokio::test]
async fn logout_with_the_access_token_as_bearer_ends_both_tokens_even_across_a_restart() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    let pair = login_pair(&app, "ann", "password-123").await;
    let res = app
        .client
        .post(format!("{}/api/v1/auth/logout", app.base))
        .bearer_auth(access(&pair))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (s, body) = app.get("/api/v1/orders", Some(access(&pair))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("revoked"), "{body}");
    let (s, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": pair["refresh_token"]})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Another session of the same person is not touched.
    let other = login_pair(&app, "ann", "password-123").await;
    assert_eq!(app.get("/api/v1/orders", Some(access(&other))).await.0, StatusCode::OK);

    let (config, dir) = app.stop().await;
    let app = TestApp::start(config, dir).await;
    assert_eq!(app.get("/api/v1/orders", Some(access(&pair))).await.0, StatusCode::UNAUTHORIZED, "kept in the store");
    assert_eq!(app.get("/api/v1/orders", Some(access(&other))).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_ends_every_session_of_the_account() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.signup("ann").await;
    let phone = login_pair(&app, "ann", "password-123").await;
    let laptop = login_pair(&app, "ann", "password-123").await;
    let (s, body) = app
        .put(&format!("/api/v1/users/{ann}"), Some(access(&laptop)), json!({"password": "a brand new phrase"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for pair in [&phone, &laptop] {
        assert_eq!(app.get("/api/v1/orders", Some(access(pair))).await.0, StatusCode::UNAUTHORIZED);
        let (s, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": pair["refresh_token"]})).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let fresh = login_pair(&app, "ann", "a brand new phrase").await;
    assert_eq!(app.get("/api/v1/orders", Some(access(&fresh))).await.0, StatusCode::OK);
    let (s, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": fresh["refresh_token"]})).await;
    assert_eq!(s, StatusCode::OK, "a session begun after the change works");
}

#[tokio::test]
async fn ten_failed_logins_lock_the_account_with_429_and_retry_after_and_the_lock_is_stored() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    app.signup("bob").await;
    for _ in 0..10 {
        let (s, _) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "guess-guess"})).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let res = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"login": "ann", "password": "password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the right password is refused while locked");
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    login_pair(&app, "bob", "password-123").await;

    let (config, dir) = app.stop().await;
    let app = TestApp::start(config, dir).await;
    let (s, _) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "password-123"})).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "the lock is in the database, not in one process");
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let locked = metrics
        .lines()
        .find(|l| l.starts_with("boxoffice_requests_refused_total{reason=\"login_locked\"}"))
        .expect("the refusal metric");
    assert!(!locked.ends_with(" 0"), "{locked}");
}

#[tokio::test]
async fn a_successful_login_starts_the_failure_count_again() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    for round in 0..3 {
        for _ in 0..9 {
            let (s, _) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "guess-guess"})).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "round {round}");
        }
        login_pair(&app, "ann", "password-123").await;
    }
}

/// Logins until the first 429: how many were answered otherwise.
async fn logins_until_refused(app: &TestApp, forwarded_for: Option<&str>) -> usize {
    for n in 0..20 {
        let mut req = app
            .client
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"login": "nobody", "password": "not-a-password"}));
        if let Some(xff) = forwarded_for {
            req = req.header("x-forwarded-for", xff);
        }
        let res = req.send().await.unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.headers().contains_key("retry-after"));
            return n;
        }
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    20
}

#[tokio::test]
async fn auth_requests_are_limited_per_address_and_forwarded_for_counts_only_from_trusted_proxies() {
    // The admin login of `spawn` is the first request from 127.0.0.1.
    let app = TestApp::spawn_with(|c| c.limits.auth_per_address_per_minute = 5).await;
    assert_eq!(logins_until_refused(&app, None).await, 4);
    // From an untrusted peer the header is ignored: a made-up address does not help.
    assert_eq!(logins_until_refused(&app, Some("198.51.100.7")).await, 0);
    let (s, _) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "x@example.com", "username": "xyz", "password": "long enough pass"}),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "sign-up counts too");

    let proxied = TestApp::spawn_with(|c| {
        c.limits.auth_per_address_per_minute = 3;
        c.limits.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    assert_eq!(logins_until_refused(&proxied, Some("198.51.100.1")).await, 3);
    assert_eq!(logins_until_refused(&proxied, Some("198.51.100.2, 127.0.0.1")).await, 3, "another client");
}

#[tokio::test]
async fn a_login_for_an_unknown_account_takes_as_long_as_one_for_a_known_account() {
    // Real hashing cost here: the cheap test parameters would hide the difference.
    let app = TestApp::spawn_with(|c| {
        c.auth.argon2_memory_kib = 19_456;
        c.auth.argon2_iterations = 2;
    })
    .await;
    app.signup("ann").await;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        for (login, times) in [("ann", &mut known), ("nobody-here", &mut unknown)] {
            let started = Instant::now();
            let (s, _) =
                app.post("/api/v1/auth/login", None, json!({"login": login, "password": "wrong-password"})).await;
            times.push(started.elapsed());
            assert_eq!(s, StatusCode::UNAUTHORIZED);
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        unknown.as_secs_f64() >= 0.5 * known.as_secs_f64(),
        "unknown account {unknown:?} against known {known:?}: the difference tells who has an account"
    );
}

#[tokio::test]
async fn parallel_guesses_all_count_toward_the_lockout() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    let guesses = (0..30).map(|i| {
        let app = &app;
        async move {
            let body = json!({"login": "ann", "password": format!("guess number {i}")});
            app.post("/api/v1/auth/login", None, body).await.0
        }
    });
    let answers = futures::future::join_all(guesses).await;
    let let_through = answers.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let locked = answers.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(let_through + locked, 30, "{answers:?}");
    assert!(let_through <= 10, "{let_through} guesses were checked, the limit is 10");
    let (s, _) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "password-123"})).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_login_for_nobody_is_answered_like_one_for_somebody_even_when_locked() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    for login in ["ann", "nobody-at-all"] {
        let mut answers = Vec::new();
        for _ in 0..11 {
            answers
                .push(app.post("/api/v1/auth/login", None, json!({"login": login, "password": "wrong guess"})).await.0);
        }
        assert!(answers[..10].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{login}: {answers:?}");
        assert_eq!(answers[10], StatusCode::TOO_MANY_REQUESTS, "{login}: the 11th");
    }
}

#[tokio::test]
async fn a_refresh_token_issued_under_an_older_generation_is_refused() {
    use boxoffice::store::entities::users;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let app = TestApp::spawn().await;
    let (ann, _) = app.signup("ann").await;
    let pair = login_pair(&app, "ann", "password-123").await;
    // What a login racing a password change leaves: a refresh token the change did not revoke,
    // issued under the generation before it.
    users::Entity::update_many()
        .col_expr(users::Column::TokenGeneration, Expr::value(7))
        .filter(users::Column::Id.eq(ann))
        .exec(&app.db)
        .await
        .unwrap();
    let (s, body) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": pair["refresh_token"]})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn logins_and_refused_logins_are_announced_for_the_security_audit_trail() {
    let app = TestApp::spawn_with(|c| c.limits.login_failures_per_account = 2).await;
    let (ann, _) = app.signup("ann").await;
    let wrong = "Not-Her-Password-42";
    for login in ["ann", "nobody-at-all"] {
        let (s, _) = app.post("/api/v1/auth/login", None, json!({"login": login, "password": wrong})).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Past the account's limit: locked, even for the right password.
    let (s, _) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": wrong})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "password-123"})).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);

    app.eventually(10, "the logins in the audit log", || async {
        app.audit("user.login").await.len() == 2 && app.audit("user.login_failed").await.len() == 4
    })
    .await;
    let logins = app.audit("user.login").await;
    assert!(
        logins.iter().any(|e| e["data"]["userId"] == ann.to_string() && e["data"]["username"] == "ann"),
        "{logins:?}"
    );
    let failed = app.audit("user.login_failed").await;
    let seen: Vec<(String, Value, String)> = failed
        .iter()
        .map(|e| {
            (
                e["data"]["login"].as_str().unwrap().to_owned(),
                e["data"]["userId"].clone(),
                e["data"]["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let ann_id = json!(ann.to_string());
    for want in [
        ("ann".to_owned(), ann_id.clone(), "bad_credentials".to_owned()),
        ("nobody-at-all".to_owned(), Value::Null, "bad_credentials".to_owned()),
        ("ann".to_owned(), ann_id, "locked".to_owned()),
    ] {
        assert!(seen.contains(&want), "{want:?} not in {seen:?}");
    }
    let all = serde_json::to_string(&failed).unwrap();
    assert!(!all.contains(wrong) && !all.contains("password-123"), "no password in the trail: {all}");
}

/// A login from `client` (a proxy at 127.0.0.1 names it in `X-Forwarded-For`): its status.
async fn login_from(app: &TestApp, client: &str, login: &str, password: &str) -> StatusCode {
    app.client
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("x-forwarded-for", client)
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

/// Before, every refused attempt during a lockout was counted: one wrong password every so often
/// kept an account locked for good, and so did its owner's own retries (issue 36).
#[tokio::test]
async fn attempts_refused_by_a_lockout_do_not_extend_it() {
    let app = TestApp::spawn_with(|c| {
        c.limits.login_failures_per_account = 3;
        c.limits.login_failure_window_seconds = 2;
    })
    .await;
    app.signup("ann").await;
    let wrong = json!({"login": "ann", "password": "guess-guess"});
    for _ in 0..3 {
        assert_eq!(app.post("/api/v1/auth/login", None, wrong.clone()).await.0, StatusCode::UNAUTHORIZED);
    }
    let locked_at = Instant::now();
    // Someone keeps trying through most of the lock (counted, these would hold it past 3 s).
    while locked_at.elapsed() < Duration::from_millis(1500) {
        assert_eq!(app.post("/api/v1/auth/login", None, wrong.clone()).await.0, StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The lock ends when the failures that caused it leave the window.
    tokio::time::sleep(Duration::from_millis(2300).saturating_sub(locked_at.elapsed())).await;
    login_pair(&app, "ann", "password-123").await;
}

#[tokio::test]
async fn a_guesser_at_one_address_cannot_lock_the_owner_out_but_guesses_from_many_addresses_can() {
    let app = TestApp::spawn_with(|c| {
        c.limits.login_failures_per_account = 3;
        c.limits.login_failures_per_account_all_addresses = 8;
        c.limits.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.signup("ann").await;
    let (guesser, owner) = ("203.0.113.7", "198.51.100.2");
    for _ in 0..3 {
        assert_eq!(login_from(&app, guesser, "ann", "guess-guess").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&app, guesser, "ann", "password-123").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        login_from(&app, owner, "ann", "password-123").await,
        StatusCode::OK,
        "the owner's address is not locked"
    );

    // Three more addresses, three guesses each: past 8 over all addresses the account is locked.
    for n in 1..=3 {
        for _ in 0..3 {
            login_from(&app, &format!("203.0.113.{}", 10 + n), "ann", "guess-guess").await;
        }
    }
    assert_eq!(login_from(&app, owner, "ann", "password-123").await, StatusCode::TOO_MANY_REQUESTS);
}
