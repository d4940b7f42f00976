use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
use serde_json::{Value, json};

use crate::common::TestApp;

#[tokio::test]
async fn malformed_json_is_400_and_a_wrong_type_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signup("ann").await;
    let res = app
        .client
        .post(format!("{}/api/v1/orders", app.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"event_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");

    let (s, body) = app.post("/api/v1/orders", Some(&token), json!({"event_id": 5, "quantity": 1})).await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("event_id")), "{body}");
    let (s, body) = app.post("/api/v1/orders", Some(&token), json!({"quantity": 1})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn a_body_without_json_content_type_is_415() {
    let app = TestApp::spawn().await;
    let res = app.client.post(format!("{}/api/v1/auth/login", app.base)).body("{}").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn unknown_routes_ids_and_methods_answer_json_errors() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signup("ann").await;
    let (s, body) = app.get("/api/v1/nothing-here", None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (s, body) = app.get("/api/v1/orders/not-a-uuid", Some(&token)).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (s, body) = app.request(reqwest::Method::DELETE, "/api/v1/events", Some(&token), None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
}

#[tokio::test]
async fn health_readiness_openapi_and_docs_are_served() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.0, StatusCode::OK);
    let (s, ready) = app.get("/readyz", None).await;
    assert_eq!((s, ready["status"].as_str()), (StatusCode::OK, Some("ready")));
    let (s, spec) = app.get("/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let paths = [
        ("/api/v1/orders", "get"),
        ("/api/v1/payments", "post"),
        ("/api/v1/events/{id}", "put"),
        ("/api/v1/audit-logs", "get"),
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/users", "get"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/users/{id}", "put"),
        ("/api/v1/users/{id}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ];
    for (path, method) in paths {
        assert!(spec["paths"][path].get(method).is_some(), "{method} {path} missing from the OpenAPI document");
    }
    // The document validates as far as it can be checked here: every operation id is unique.
    let mut ids = std::collections::HashSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} repeats ({method} {path})");
        }
    }
}

#[tokio::test]
async fn the_docs_are_served_from_the_binary_under_a_content_security_policy() {
    let app = TestApp::spawn().await;
    let res = app.client.get(format!("{}/docs/", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
    let page = res.text().await.unwrap();
    assert!(page.contains("swagger-ui-bundle.js"), "{page}");
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"),
        "nothing from elsewhere: {page}"
    );
    for (file, at_least) in
        [("swagger-ui-bundle.js", 100_000), ("swagger-ui.css", 10_000), ("swagger-initializer.js", 50)]
    {
        let res = app.client.get(format!("{}/docs/{file}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{file}");
        let body = res.text().await.unwrap();
        assert!(body.len() >= at_least, "{file} is {} bytes", body.len());
        if file == "swagger-initializer.js" {
            assert!(body.contains("/openapi.json"), "{body}");
        }
    }
}

#[tokio::test]
async fn the_audit_log_is_admin_only_and_filters_by_type() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signup("ann").await;
    let (s, _) = app.get("/api/v1/audit-logs", Some(&token)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.eventually(5, "user.created audited", || async { app.audit("user.created").await.len() == 2 }).await;
    let (s, _) = app.get("/api/v1/audit-logs?event_type=nonsense", Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let created = app.audit("user.created").await;
    assert!(created.iter().all(|e| e["event_type"] == "user.created"));
    assert!(created.iter().any(|e| e["data"]["username"] == "ann"));
    app.eventually(5, "the welcome e-mail", || async {
        app.mails().iter().any(|m| m.contains("Welcome to Boxoffice"))
    })
    .await;
}

#[tokio::test]
async fn a_database_that_goes_away_answers_503_with_a_json_body_not_500() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    assert_eq!(app.order(&token, event, 1).await.0, StatusCode::CREATED);
    app.db.close_by_ref().await.unwrap();
    app.writer.close_by_ref().await.unwrap();
    let (s, body) = app.get("/api/v1/orders?limit=5", Some(&token)).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")), "{body}");
    // On PostgreSQL the committer writes through the closed writer pool. On SQLite it has its own
    // connection, which closing the pools does not touch (a SQLite that cannot be written is
    // `an_actor_call_that_times_out_answers_503_json`).
    if app.db.get_database_backend() == DbBackend::Postgres {
        let (s, body) = app.order(&token, event, 1).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
            "{body}"
        );
    }
    let (s, _) = app.get("/readyz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}

/// Without MongoDB the audit log is the outbox: an event is listed as soon as the change it
/// reports was answered, with no delivery to wait for, and carries what happened.
#[tokio::test]
async fn without_mongodb_an_order_is_in_the_audit_log_as_soon_as_it_is_answered() {
    let app = TestApp::spawn().await;
    let event = app.event(1500, 10, 600).await;
    let (_, token) = app.signup("eve").await;
    let (s, order) = app.order(&token, event, 2).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let placed = app.audit("order.placed").await;
    let entry = placed.iter().find(|e| e["data"]["orderId"] == order["id"]).expect("the hold's order.placed, at once");
    assert_eq!(entry["data"]["quantity"], 2);
    assert_eq!(entry["data"]["amountCents"], 3000);
    assert_eq!(entry["received_at"], entry["occurred_at"], "recorded with the change itself");
    assert!(
        app.audit("inventory.changed").await.iter().any(|e| e["data"]["eventId"] == event.to_string()),
        "the counts it changed are audited in the same transaction"
    );
}

#[tokio::test]
async fn audit_entries_carry_their_event_id_and_time_and_the_log_pages_both_ways() {
    let app = TestApp::spawn().await;
    for name in ["ann", "bob", "cat", "dan"] {
        app.signup(name).await;
    }
    // The admin and four customers.
    app.eventually(5, "five user.created entries", || async { app.audit("user.created").await.len() == 5 }).await;
    let page = |query: String| {
        let app = &app;
        async move {
            let (s, body) = app
                .get(&format!("/api/v1/audit-logs?event_type=user.created&limit=2{query}"), Some(&app.admin_token))
                .await;
            assert_eq!(s, StatusCode::OK, "{body}");
            body
        }
    };
    let first = page(String::new()).await;
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for entry in items {
        assert!(entry["event_id"].as_str().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()), "{entry}");
        assert!(
            entry["occurred_at"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
            "{entry}"
        );
    }
    let next = first["next_token"].as_str().expect("a next page");
    let second = page(format!("&next_token={next}")).await;
    let ids = |p: &serde_json::Value| -> Vec<String> {
        p["items"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids(&second).len(), 2);
    assert!(ids(&second).iter().all(|id| !ids(&first).contains(id)), "pages do not overlap");
    let third = page(format!("&next_token={}", second["next_token"].as_str().expect("a third page"))).await;
    assert_eq!(ids(&third).len(), 1);
    assert!(third["next_token"].is_null(), "the last page says so");
    let back = page(format!("&previous_token={}", second["previous_token"].as_str().expect("a way back"))).await;
    assert_eq!(ids(&back), ids(&first));
    // Both tokens: what lies between them, here the second page.
    let between = page(format!(
        "&next_token={}&previous_token={}",
        first["next_token"].as_str().unwrap(),
        third["previous_token"].as_str().expect("a way back from the third")
    ))
    .await;
    assert_eq!(ids(&between), ids(&second));
}

#[tokio::test]
async fn an_actor_call_that_times_out_answers_503_json() {
    let app = TestApp::spawn_with(|c| c.booking.actor_call_timeout_ms = 300).await;
    let event = app.event(1000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let timeouts = || async {
        let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with("boxoffice_actor_call_timeouts_total"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = timeouts().await;
    // Another writer holds the database: the hold cannot commit, so its reply does not come in time.
    let blocker = app.db.begin().await.unwrap();
    let lock = match app.db.get_database_backend() {
        DbBackend::Postgres => "LOCK TABLE orders IN EXCLUSIVE MODE",
        _ => "UPDATE categories SET name = name",
    };
    blocker.execute_unprepared(lock).await.unwrap();
    let (s, body) = app.order(&token, event, 1).await;
    blocker.rollback().await.unwrap();
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")), "{body}");
    assert!(body["error"]["message"].is_string());
    assert!(timeouts().await > before, "it was the actor call that timed out");
}

#[tokio::test]
async fn the_postman_collection_has_every_operation_once_and_a_wired_login() {
    let app = TestApp::spawn().await;
    let (s, collection) = app.get("/postman.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(collection["info"]["schema"], "https://schema.getpostman.com/json/collection/v2.1.0/collection.json");
    let var =
        |k: &str| collection["variable"].as_array().unwrap().iter().find(|v| v["key"] == k).map(|v| v["value"].clone());
    assert_eq!(var("baseUrl"), Some(serde_json::json!(app.base)), "baseUrl is where it was fetched from");
    assert_eq!(collection["auth"]["bearer"][0]["value"], "{{token}}");

    let (_, spec) = app.get("/openapi.json", None).await;
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let mut requests = Vec::new();
    for folder in collection["item"].as_array().unwrap() {
        for item in folder["item"].as_array().unwrap() {
            let raw = item["request"]["url"]["raw"].as_str().unwrap();
            let path: String = raw
                .trim_start_matches("{{baseUrl}}")
                .split('/')
                .map(|s| s.strip_prefix(':').map_or(s.to_owned(), |v| format!("{{{v}}}")))
                .collect::<Vec<_>>()
                .join("/");
            requests.push(((item["request"]["method"].as_str().unwrap().to_owned(), path), item.clone()));
        }
    }
    let listed: std::collections::BTreeSet<_> = requests.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(listed.len(), requests.len(), "every operation once");
    assert_eq!(listed, documented, "the collection is the OpenAPI document's operations");
    let find = |method: &str, path: &str| {
        requests.iter().find(|(k, _)| k.0 == method && k.1 == path).map(|(_, i)| i.clone()).unwrap()
    };
    assert_eq!(find("GET", "/api/v1/events")["request"]["auth"]["type"], "noauth", "public: no token");
    assert!(find("GET", "/api/v1/orders")["request"]["auth"].is_null(), "the collection's bearer token");
    let order_body = find("POST", "/api/v1/orders")["request"]["body"]["raw"].as_str().unwrap().to_owned();
    let order_body: Value = serde_json::from_str(&order_body).unwrap();
    assert!(order_body.get("event_id").is_some() && order_body.get("quantity").is_some(), "{order_body}");

    // The wiring, followed as Postman would: log in, keep the token the script keeps, send it.
    let login = find("POST", "/api/v1/auth/login");
    let script = login["event"][0]["script"]["exec"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(script.contains("pm.collectionVariables.set('token', body.access_token)"), "{script}");
    let url = login["request"]["url"]["raw"].as_str().unwrap().replace("{{baseUrl}}", &app.base);
    let password = app.admin_password();
    let body = serde_json::json!({"login": "admin", "password": password});
    let res = app.client.post(url).json(&body).send().await.unwrap();
    let token = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let orders = find("GET", "/api/v1/orders");
    let url = orders["request"]["url"]["raw"].as_str().unwrap().replace("{{baseUrl}}", &app.base);
    let auth = collection["auth"]["bearer"][0]["value"].as_str().unwrap().replace("{{token}}", &token);
    let res = app.client.get(url).bearer_auth(auth).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Issue 36: the role is checked before the body is read, a sign-up takes no field it does not
/// know (`"role": "admin"` was silently ignored with 201), and the old clients' log-ins take
/// `userName` and a username sent beside an e-mail.
#[tokio::test]
async fn roles_come_before_bodies_unknown_sign_up_fields_are_refused_and_old_log_ins_take_their_field_names() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 20, 600).await;
    let (ann, token) = app.signup("ann").await;
    let (bob, _) = app.signup("bob").await;
    let res = app
        .client
        .put(format!("{}/api/v1/events/{event}", app.base))
        .bearer_auth(&token)
        .json(&json!({"name": "partial"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a customer's partial body: {:?}", res.text().await);
    let (s, _) = app.post("/api/v1/categories", Some(&token), json!({"nonsense": true})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let res = app
        .client
        .put(format!("{}/api/v1/users/{bob}", app.base))
        .bearer_auth(&token)
        .json(&json!({"first_name": 42}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "another's account, whatever the body");
    let res = app
        .client
        .put(format!("{}/api/v1/users/{ann}", app.base))
        .bearer_auth(&token)
        .json(&json!({"first_name": 42}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "one's own: the body is read");

    let (s, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "eve@example.com", "username": "eve", "password": "a-long-secret-42", "role": "admin"}),
        )
        .await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("role")), "{body}");

    let (s, body) = app.post("/api/users/login", None, json!({"userName": "ann", "password": "password-123"})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = app
        .post("/v1/login", None, json!({"username": "ann", "email": "ann@example.com", "password": "password-123"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}
