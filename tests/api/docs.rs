//! The OpenAPI document and the Postman collection made from it, held to what they promise: a
//! body the document calls valid is one its route accepts, and every request of the collection
//! can be sent as it is.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::common::TestApp;

/// Every request of the collection, in order, with its folder's name.
fn requests(collection: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for folder in collection["item"].as_array().unwrap() {
        for item in folder["item"].as_array().unwrap() {
            out.push((folder["name"].as_str().unwrap().to_owned(), item.clone()));
        }
    }
    out
}

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

#[tokio::test]
async fn every_postman_request_sends_a_fresh_idempotency_key() {
    let app = TestApp::spawn().await;
    let (_, collection) = app.get("/postman.json", None).await;
    let mut keyed = Vec::new();
    for (_, item) in requests(&collection) {
        for header in item["request"]["header"].as_array().unwrap() {
            if header["key"].as_str().unwrap().eq_ignore_ascii_case("idempotency-key") {
                // An empty key is refused; a fixed one would answer every run with the first run's reply.
                assert_eq!(header["value"], "{{$guid}}", "{}", item["name"]);
                assert_ne!(header["disabled"], true, "{}", item["name"]);
                keyed.push(item["request"]["url"]["raw"].as_str().unwrap().to_owned());
            }
        }
    }
    for booking in ["{{baseUrl}}/api/v1/orders", "{{baseUrl}}/api/v1/payments", "{{baseUrl}}/api/v1/registrations"] {
        assert!(keyed.iter().any(|k| k == booking), "{booking} carries a key: {keyed:?}");
    }
}

#[tokio::test]
async fn every_postman_request_has_a_short_unique_name() {
    let app = TestApp::spawn().await;
    let (_, collection) = app.get("/postman.json", None).await;
    let all = requests(&collection);
    let names: std::collections::BTreeSet<&str> = all.iter().map(|(_, i)| i["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), all.len(), "names are unique: {names:?}");
    for name in &names {
        assert!(
            !name.is_empty()
                && name.chars().count() <= boxoffice::http::postman::MAX_NAME_CHARS
                && !name.contains('\n'),
            "{name:?} is a name, not a paragraph"
        );
    }
    // The long summaries are kept, as the requests' descriptions.
    let (_, logout) = all.iter().find(|(_, i)| i["request"]["url"]["raw"] == "{{baseUrl}}/api/v1/auth/logout").unwrap();
    assert_eq!(logout["name"], "postAuthLogout");
    assert!(logout["request"]["description"].as_str().unwrap().starts_with("Ends the session"));
    assert_eq!(all[0].0, "auth", "a run from the top logs in first");
    assert_eq!(all.last().unwrap().0, "compat");
}
