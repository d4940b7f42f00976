//! The OpenAPI document, held to what it promises: a body it calls valid is one its route
//! accepts.

use reqwest::{Method, StatusCode};
use uuid::Uuid;

use crate::common::TestApp;

#[tokio::test]
async fn every_documented_request_body_is_accepted_by_its_route() {
    // Each operation is sent with a token of its own (a log-out or a deleted account must not
    // decide the next one's answer), so logins are many.
    let app = TestApp::spawn_with(|c| c.limits.auth_per_address_per_minute = 0).await;
    let (s, doc) = app.get("/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let mut sent = 0;
    let mut refused = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op["requestBody"]["content"].as_object() else { continue };
            let public = op["security"].as_array().is_some_and(|s| s.iter().any(|r| r == &serde_json::json!({})));
            // Ids that exist nowhere: a 404 comes after the body was read and accepted.
            let url: String = path
                .split('/')
                .map(|s| if s.starts_with('{') { Uuid::nil().to_string() } else { s.to_owned() })
                .collect::<Vec<_>>()
                .join("/");
            for (media_type, media) in content {
                let body = boxoffice::http::postman::example(&doc, &media["schema"]);
                let token = app.login("admin", &app.admin_password()).await;
                let mut req = app
                    .client
                    .request(
                        Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                        format!("{}{url}", app.base),
                    )
                    .bearer_auth(token)
                    .header("Idempotency-Key", Uuid::new_v4().to_string());
                req = match media_type.as_str() {
                    "application/json" => req.json(&body),
                    "application/x-www-form-urlencoded" => req.form(&body),
                    other => panic!("{method} {path}: no way to send {other} here"),
                };
                let res = req.send().await.unwrap();
                let status = res.status();
                let answer = res.text().await.unwrap();
                sent += 1;
                // 400, 413, 415 and 422 are the answers to a body the route would not take; 401 and
                // 403 (where a token is needed) would mean it was never read.
                let not_read = !public && matches!(status.as_u16(), 401 | 403);
                if matches!(status.as_u16(), 400 | 413 | 415 | 422) || status.is_server_error() || not_read {
                    refused
                        .push(format!("{} {path} ({media_type}) {body} -> {status} {answer}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(sent > 20, "the document's request bodies were found: {sent}");
    assert!(refused.is_empty(), "documented bodies refused by their routes:\n{}", refused.join("\n"));
}
