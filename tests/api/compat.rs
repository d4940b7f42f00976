//! The compat layer (`http::compat`): each replaced system's own example requests, as its design
//! document gives them, against Boxoffice, with the effects that system promised and the refusals
//! where Boxoffice's rules are stricter.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;

/// A form post as `curl -d` sends it.
async fn form(app: &TestApp, path: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Makes `user` box-office staff, as an admin does.
async fn make_staff(app: &TestApp, user: Uuid) {
    let (s, body) = app.put(&format!("/api/v1/users/{user}"), Some(&app.admin_token), json!({"role": "staff"})).await;
    assert_eq!((s, body["role"].as_str()), (StatusCode::OK, Some("staff")), "{body}");
}

fn field_error(body: &Value) -> (&str, &str) {
    (body["error"]["field"].as_str().unwrap_or_default(), body["error"]["message"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn event_registration_clients_register_people_with_their_own_request_and_staff_register_others() {
    let app = TestApp::spawn().await;
    let event = app.event(0, 5, 600).await;
    let (ann, ann_token) = app.signup("ann").await;
    let (bob, _) = app.signup("bob").await;
    let (desk, desk_token) = app.signup("desk").await;

    // The seed's request, exactly: no token is 401; its integer user id is explained.
    let original = json!({"userId": 12, "eventId": event});
    assert_eq!(app.post("/registrations", None, original.clone()).await.0, StatusCode::UNAUTHORIZED);
    let (s, body) = app.post("/registrations", Some(&desk_token), original).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (field, message) = field_error(&body);
    assert_eq!(field, "userId");
    assert!(message.contains("UUID"), "{message}");

    // A person registers themself, naming themself by e-mail; the answer has the original shape.
    let (s, body) =
        app.post("/registrations", Some(&ann_token), json!({"userId": "ann@example.com", "eventId": event})).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["userId"], json!(ann));
    assert_eq!(body["eventId"], json!(event));
    assert_eq!(body["status"], "confirmed");
    assert!(Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    assert_eq!(body.as_object().unwrap().len(), 4, "exactly the original's fields: {body}");

    // Naming someone else takes the staff role, whether or not that someone exists.
    for other in [json!("bob"), json!(bob), json!("nobody-at-all")] {
        let (s, body) = app.post("/registrations", Some(&ann_token), json!({"userId": other, "eventId": event})).await;
        assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{other}: {body}");
    }
    make_staff(&app, desk).await;
    let (s, body) = app.post("/registrations", Some(&desk_token), json!({"userId": "bob", "eventId": event})).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["userId"], json!(bob), "registered for bob, not for the staff member");
    let (s, body) =
        app.post("/registrations", Some(&desk_token), json!({"userId": "nobody-at-all", "eventId": event})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    // One registration per person, whoever asks.
    let (s, body) = app.post("/registrations", Some(&desk_token), json!({"userId": bob, "eventId": event})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_registered")), "{body}");

    // What the original promised: the count, the `registration.created` message (the audit log is
    // the published outbox here), and a confirmation e-mail to each person.
    assert_eq!(app.counts(event).await, (3, 0, 2, 5));
    app.eventually(10, "two registration.created events", || async {
        app.audit("registration.created").await.len() == 2
    })
    .await;
    let registered: Vec<Value> = app.audit("registration.created").await;
    for who in [ann, bob] {
        assert!(
            registered.iter().any(|e| e["data"]["userId"] == json!(who) && e["data"]["eventId"] == json!(event)),
            "{who}: {registered:?}"
        );
    }
    app.eventually(10, "both confirmation e-mails", || async {
        ["ann@example.com", "bob@example.com"]
            .iter()
            .all(|to| app.mails().iter().any(|m| m.contains(to) && m.contains("You are registered")))
    })
    .await;
    assert!(!app.mails().iter().any(|m| m.contains("desk@example.com") && m.contains("You are registered")));
}

#[tokio::test]
async fn ecommerce_clients_sign_up_log_in_and_pay_with_forms() {
    let app = TestApp::spawn().await;
    // Its curl lines as written: no e-mail (Boxoffice needs one), then a password too weak here.
    let (s, body) = form(&app, "/register", None, "username=alice&password=secret").await;
    assert_eq!((s, field_error(&body).0), (StatusCode::UNPROCESSABLE_ENTITY, "email"), "{body}");
    let (s, body) = form(&app, "/register", None, "username=alice&password=secret&email=alice%40example.com").await;
    assert_eq!((s, field_error(&body).0), (StatusCode::UNPROCESSABLE_ENTITY, "password"), "{body}");
    let (s, body) =
        form(&app, "/register", None, "username=alice&password=a-long-secret-42&email=alice%40example.com").await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let alice = body["id"].clone();
    let (s, body) = form(&app, "/login", None, "username=alice&password=wrong-password").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, tokens) = form(&app, "/login", None, "username=alice&password=a-long-secret-42").await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    let token = tokens["token"].as_str().unwrap().to_owned();
    assert_eq!(tokens["access_token"], tokens["token"]);
    assert!(tokens["refresh_token"].is_string());
    let (s, me) = app.get(&format!("/api/v1/users/{}", alice.as_str().unwrap()), Some(&token)).await;
    assert_eq!((s, me["username"].as_str()), (StatusCode::OK, Some("alice")));

    // `curl -X POST /pay`: no token, then no order named.
    let res = app.client.post(format!("{}/pay", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.client.post(format!("{}/pay", app.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(field_error(&body).0, "order_id", "{body}");

    // A real payment, as a form: the order is confirmed and the seats sold.
    let event = app.event(2_500, 4, 600).await;
    let (s, order) = app.order(&token, event, 2).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let pay = format!("order_id={}&amount_cents=5000&card_token=tok_ok", order["id"].as_str().unwrap());
    let (s, payment) = form(&app, "/pay", Some(&token), &pay).await;
    assert_eq!((s, payment["status"].as_str()), (StatusCode::CREATED, Some("succeeded")), "{payment}");
    assert_eq!(app.counts(event).await, (2, 0, 2, 4));
    // The same payment as JSON is the same core call: already paid.
    let (s, body) = app
        .post("/pay", Some(&token), json!({"order_id": order["id"], "amount_cents": 5000, "card_token": "tok_ok"}))
        .await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_paid")), "{body}");
    // What its users service announced on each action: the sign-up and the log-ins.
    app.eventually(10, "user.created and user.login", || async {
        !app.audit("user.created").await.is_empty() && !app.audit("user.login").await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn ticketing_clients_use_their_v1_routes_with_their_field_names_and_tokens() {
    let app = TestApp::spawn().await;
    let sign_up = json!({
        "email": "tina@example.com", "user_name": "tina", "first_name": "Tina", "last_name": "Turner",
        "password": "a-long-secret-42", "mobile_phone": "+33 6 12 34 56 78", "birth_day": "1990-05-17",
    });
    let (s, tina) = app.post("/v1/register", None, sign_up).await;
    assert_eq!(s, StatusCode::CREATED, "{tina}");
    assert_eq!((tina["birth_day"].as_str(), tina["username"].as_str()), (Some("1990-05-17"), Some("tina")));
    let id = tina["id"].as_str().unwrap().to_owned();
    // `username|email` and a password.
    let (s, by_email) =
        app.post("/v1/login", None, json!({"email": "tina@example.com", "password": "a-long-secret-42"})).await;
    assert_eq!(s, StatusCode::OK, "{by_email}");
    let (s, tokens) = app.post("/v1/login", None, json!({"username": "tina", "password": "a-long-secret-42"})).await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();

    let (s, me) = app.get(&format!("/v1/users/{id}"), Some(&token)).await;
    assert_eq!((s, me["first_name"].as_str()), (StatusCode::OK, Some("Tina")));
    let change = json!({"user_name": "tina2", "last_name": "T.", "birth_day": "1991-01-02", "mobile_phone": "0612"});
    let (s, me) = app.put(&format!("/v1/users/{id}"), Some(&token), change).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!((me["username"].as_str(), me["birth_day"].as_str()), (Some("tina2"), Some("1991-01-02")));
    let (s, body) = app.put(&format!("/v1/users/{id}"), Some(&token), json!({"birth_day": "2999-01-01"})).await;
    assert_eq!((s, field_error(&body).0), (StatusCode::UNPROCESSABLE_ENTITY, "birth_day"), "{body}");
    assert_eq!(app.get("/v1/users", Some(&token)).await.0, StatusCode::FORBIDDEN, "the directory is the admin's");
    let (s, page) = app.get("/v1/users?limit=1", Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let next = page["next_token"].as_str().expect("two users: a next page").to_owned();
    let (s, page2) = app.get(&format!("/v1/users?limit=1&next_token={next}"), Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(page["items"][0]["id"], page2["items"][0]["id"]);
    assert!(page2["previous_token"].is_string());

    // Tickets are the events.
    let event = app.event(1_000, 3, 600).await;
    let (s, tickets) = app.get("/v1/tickets", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(tickets["items"].as_array().unwrap().iter().any(|e| e["id"] == json!(event)), "{tickets}");
    let (s, ticket) = app.get(&format!("/v1/tickets/{event}"), None).await;
    assert_eq!((s, ticket["available_slots"].as_u64()), (StatusCode::OK, Some(3)));
    let mut edit = json!({});
    for k in ["name", "category_id", "price_cents", "currency", "starts_at", "max_per_order", "hold_seconds"] {
        edit[k] = ticket[k].clone();
    }
    edit["total_slots"] = json!(4);
    let (s, _) = app.request(Method::PUT, &format!("/v1/tickets/{event}"), Some(&token), Some(edit.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "their CMS route is for administrators");
    let (s, body) = app.request(Method::PUT, &format!("/v1/tickets/{event}"), Some(&app.admin_token), Some(edit)).await;
    assert_eq!((s, body["total_slots"].as_u64()), (StatusCode::OK, Some(4)), "{body}");

    // `{"event_id", "number_slot"}`, then `{"order_id", "price"}` (and the card Boxoffice charges).
    let (s, order) = app.post("/v1/orders", Some(&token), json!({"event_id": event, "number_slot": 2})).await;
    assert_eq!((s, order["quantity"].as_u64()), (StatusCode::CREATED, Some(2)), "{order}");
    assert_eq!(app.counts(event).await, (2, 2, 0, 4));
    let (s, list) = app.get("/v1/orders", Some(&token)).await;
    assert_eq!((s, list["items"][0]["id"].clone()), (StatusCode::OK, order["id"].clone()));
    let (s, read) = app.get(&format!("/v1/orders/{}", order["id"].as_str().unwrap()), Some(&token)).await;
    assert_eq!((s, read["status"].as_str()), (StatusCode::OK, Some("pending")));
    let (s, body) = app.post("/v1/payments", Some(&token), json!({"order_id": order["id"], "price": 2000})).await;
    assert_eq!((s, field_error(&body).0), (StatusCode::UNPROCESSABLE_ENTITY, "card_token"), "{body}");
    let (s, payment) = app
        .post("/v1/payments", Some(&token), json!({"order_id": order["id"], "price": 2000, "card_token": "tok_ok"}))
        .await;
    assert_eq!((s, payment["status"].as_str()), (StatusCode::CREATED, Some("succeeded")), "{payment}");
    let (s, list) = app.get("/v1/payments", Some(&token)).await;
    assert_eq!((s, list["items"][0]["id"].clone()), (StatusCode::OK, payment["id"].clone()));
    let (s, read) = app.get(&format!("/v1/payments/{}", payment["id"].as_str().unwrap()), Some(&token)).await;
    assert_eq!((s, read["history"].as_array().map(Vec::len).unwrap_or(0) >= 2), (StatusCode::OK, true), "{read}");
    assert_eq!(app.counts(event).await, (2, 0, 2, 4));

    // Its log-out takes no body and ends the bearer's token.
    let res = app.client.post(format!("{}/v1/logout", app.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1/orders", Some(&token)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_and_orders_clients_create_read_update_and_cancel() {
    let app = TestApp::spawn().await;
    let new_user =
        json!({"email": "uma@example.com", "userName": "uma", "password": "a-long-secret-42", "firstName": "Uma"});
    let (s, uma) = app.post("/api/users", None, new_user).await;
    assert_eq!((s, uma["first_name"].as_str()), (StatusCode::CREATED, Some("Uma")), "{uma}");
    let id = uma["id"].as_str().unwrap().to_owned();
    let (s, tokens) =
        app.post("/api/users/login", None, json!({"email": "uma@example.com", "password": "a-long-secret-42"})).await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    let token = tokens["token"].as_str().unwrap().to_owned();
    // GET and UPDATE need the user's own token (or an admin's).
    assert_eq!(app.get(&format!("/api/users/{id}"), None).await.0, StatusCode::UNAUTHORIZED);
    let (_, other) = app.signup("otto").await;
    assert_eq!(app.get(&format!("/api/users/{id}"), Some(&other)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("/api/users/{id}"), Some(&token)).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/users/{id}"), Some(&app.admin_token)).await.0, StatusCode::OK);
    let (s, uma) = app.put(&format!("/api/users/{id}"), Some(&token), json!({"lastName": "Thurman"})).await;
    assert_eq!((s, uma["last_name"].as_str()), (StatusCode::OK, Some("Thurman")), "{uma}");

    let event = app.event(1_500, 2, 600).await;
    let (s, order) = app.post("/api/orders", Some(&token), json!({"eventId": event, "quantity": 2})).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let order_path = format!("/api/orders/{}", order["id"].as_str().unwrap());
    let (s, read) = app.get(&order_path, Some(&token)).await;
    assert_eq!((s, read["status"].as_str()), (StatusCode::OK, Some("pending")));
    assert_eq!(app.get(&order_path, Some(&other)).await.0, StatusCode::NOT_FOUND, "another's order is not there");
    assert_eq!(app.counts(event).await, (0, 2, 0, 2));
    // Its `POST /api/orders/:id` cancels.
    let (s, cancelled) = app.post(&order_path, Some(&token), json!({})).await;
    assert_eq!((s, cancelled["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{cancelled}");
    assert_eq!(app.counts(event).await, (2, 0, 0, 2));
    app.eventually(10, "order.placed and order.cancelled", || async {
        !app.audit("order.placed").await.is_empty() && !app.audit("order.cancelled").await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn staff_book_for_others_and_nothing_else_of_an_admins() {
    let app = TestApp::spawn().await;
    let (desk, desk_token) = app.signup("desk").await;
    let (guest, guest_token) = app.signup("guest").await;
    let event = app.event(1_000, 10, 600).await;
    let for_guest = json!({"event_id": event, "quantity": 1, "user_id": guest});

    // Only an admin grants a role, and an admin cannot drop their own.
    let (s, _) = app.put(&format!("/api/v1/users/{desk}"), Some(&desk_token), json!({"role": "staff"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, users) = app.get("/api/v1/users", Some(&app.admin_token)).await;
    let admin = users["items"].as_array().unwrap().iter().find(|u| u["role"] == "admin").unwrap()["id"].clone();
    let (s, body) = app
        .put(&format!("/api/v1/users/{}", admin.as_str().unwrap()), Some(&app.admin_token), json!({"role": "user"}))
        .await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("own_role")), "{body}");

    let (s, _) = app.post("/api/v1/orders", Some(&desk_token), for_guest.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a plain user books only for themself");
    make_staff(&app, desk).await;
    let (s, order) = app.post("/api/v1/orders", Some(&desk_token), for_guest).await;
    assert_eq!((s, order["user_id"].clone()), (StatusCode::CREATED, json!(guest)), "{order}");
    // The order is the guest's: they see and pay it.
    let (s, _) = app.get(&format!("/api/v1/orders/{}", order["id"].as_str().unwrap()), Some(&guest_token)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.pay(&guest_token, &order, "tok_ok").await;
    assert_eq!(s, StatusCode::CREATED);
    // Nothing else of an admin's.
    assert_eq!(app.get("/api/v1/users", Some(&desk_token)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/audit-logs", Some(&desk_token)).await.0, StatusCode::FORBIDDEN);
    let (s, _) = app.post("/api/v1/categories", Some(&desk_token), json!({"name": "x", "kind": "free"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.put(&format!("/api/v1/users/{guest}"), Some(&desk_token), json!({"first_name": "G"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Naming an unknown account is a 404 for staff.
    let (s, _) = app
        .post("/api/v1/orders", Some(&desk_token), json!({"event_id": event, "quantity": 1, "user_id": Uuid::now_v7()}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn notifications_list_the_callers_own_messages_with_their_status() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signup("nina").await;
    let (_, other) = app.signup("oscar").await;
    let event = app.event(0, 5, 600).await;
    let (s, _) = app.post("/api/v1/registrations", Some(&token), json!({"event_id": event})).await;
    assert_eq!(s, StatusCode::CREATED);
    app.eventually(10, "nina's two messages sent", || async {
        let (_, page) = app.get("/api/v1/notifications", Some(&token)).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        items.len() == 2 && items.iter().all(|n| n["status"] == "sent")
    })
    .await;
    let (_, page) = app.get("/api/v1/notifications?limit=1", Some(&token)).await;
    let first = &page["items"][0];
    assert_eq!(first["channel"], "email");
    assert_eq!(first["to"], "nina@example.com");
    assert_eq!(first["subject"], "Welcome to Boxoffice");
    assert!(first["sent_at"].is_string() && first["created_at"].is_string(), "{first}");
    let next = page["next_token"].as_str().unwrap();
    let (_, page2) = app.get(&format!("/api/v1/notifications?limit=1&next_token={next}"), Some(&token)).await;
    assert!(page2["items"][0]["subject"].as_str().unwrap().starts_with("You are registered"), "{page2}");
    assert!(page2["next_token"].is_null());
    // Oscar sees only his welcome.
    app.eventually(10, "oscar's welcome", || async {
        let (_, page) = app.get("/api/v1/notifications", Some(&other)).await;
        page["items"].as_array().is_some_and(|i| i.len() == 1 && i[0]["to"] == "oscar@example.com")
    })
    .await;
    assert_eq!(app.get("/api/v1/notifications", None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_compat_off_the_old_routes_are_gone_from_the_server_and_its_document() {
    let app = TestApp::spawn_with(|c| c.compat.enabled = false).await;
    let (_, token) = app.signup("zoe").await;
    let event = app.event(0, 5, 600).await;
    let (s, _) = app.post("/registrations", Some(&token), json!({"eventId": event})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/v1/tickets", None).await.0, StatusCode::NOT_FOUND);
    let (_, spec) = app.get("/openapi.json", None).await;
    assert!(spec["paths"].get("/v1/orders").is_none() && spec["paths"].get("/api/v1/orders").is_some());

    let on = TestApp::spawn().await;
    let (_, spec) = on.get("/openapi.json", None).await;
    for (path, method) in
        [("/registrations", "post"), ("/pay", "post"), ("/v1/orders", "post"), ("/api/orders/{id}", "post")]
    {
        let op = &spec["paths"][path][method];
        assert_eq!(op["tags"][0], "compat", "{method} {path}: {op}");
    }
    assert_eq!(spec["paths"]["/registrations"]["post"]["operationId"], "compatPostRegistrations");
    assert_eq!(spec["paths"]["/api/v1/registrations"]["post"]["operationId"], "postRegistrations");
}

#[tokio::test]
async fn registration_and_authentication_clients_sign_up_with_a_confirmed_password_and_log_in() {
    let app = TestApp::spawn().await;
    // The seed's request as written: its password contains the e-mail's `test`.
    let seed = json!({"username": "testuser", "email": "test@example.com",
                      "password": "TestPassword123!", "confirmPassword": "TestPassword123!"});
    let (s, body) = app.post("/api/registration/register", None, seed).await;
    assert_eq!((s, field_error(&body).0), (StatusCode::UNPROCESSABLE_ENTITY, "password"), "{body}");
    let mismatch = json!({"username": "testuser", "email": "test@example.com",
                          "password": "Magenta-Pass-2024!", "confirmPassword": "Magenta-Pass-2025!"});
    let (s, body) = app.post("/api/registration/register", None, mismatch).await;
    assert_eq!((s, field_error(&body).0), (StatusCode::UNPROCESSABLE_ENTITY, "confirmPassword"), "{body}");
    let good = json!({"username": "testuser", "email": "test@example.com",
                      "password": "Magenta-Pass-2024!", "confirmPassword": "Magenta-Pass-2024!"});
    let (s, user) = app.post("/api/registration/register", None, good).await;
    assert_eq!((s, user["username"].as_str()), (StatusCode::CREATED, Some("testuser")), "{user}");
    let login = json!({"usernameOrEmail": "test@example.com", "password": "Magenta-Pass-2024!", "rememberMe": false});
    let (s, tokens) = app.post("/api/auth/login", None, login).await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    let (s, me) = app.get(&format!("/api/v1/users/{}", user["id"].as_str().unwrap()), tokens["token"].as_str()).await;
    assert_eq!((s, me["email"].as_str()), (StatusCode::OK, Some("test@example.com")));
    // Its `user.created` event, on the topic of the same name.
    app.eventually(10, "user.created for testuser", || async {
        app.audit("user.created").await.iter().any(|e| e["data"]["username"] == "testuser")
    })
    .await;
}

/// Issue 36: the ticketing client's first page asks `?next_token=` (empty), and its payments (and
/// the e-commerce client's) name no card; `compat.default_card_token` charges one for them, and
/// without it the 422 names the field.
#[tokio::test]
async fn an_empty_page_token_is_the_first_page_and_a_default_card_pays_for_clients_that_send_none() {
    let app = TestApp::spawn_with(|c| c.compat.default_card_token = "tok_ok".into()).await;
    let (s, page) = app.get("/v1/users?next_token=", Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(!page["items"].as_array().unwrap().is_empty(), "the first page: {page}");
    let (s, page) = app.get("/api/v1/events?next_token=&previous_token=", None).await;
    assert_eq!(s, StatusCode::OK, "{page}");

    let event = app.event(1000, 20, 600).await;
    let (_, token) = app.signup("ann").await;
    let (s, order) = app.post("/v1/orders", Some(&token), json!({"event_id": event, "number_slot": 1})).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let (s, paid) = app.post("/v1/payments", Some(&token), json!({"order_id": order["id"], "price": 1000})).await;
    assert_eq!((s, paid["status"].as_str()), (StatusCode::CREATED, Some("succeeded")), "{paid}");

    let strict = TestApp::spawn().await;
    let event = strict.event(1000, 20, 600).await;
    let (_, token) = strict.signup("bob").await;
    let (_, order) = strict.post("/v1/orders", Some(&token), json!({"event_id": event, "number_slot": 1})).await;
    let (s, body) = strict.post("/v1/payments", Some(&token), json!({"order_id": order["id"], "price": 1000})).await;
    assert_eq!((s, field_error(&body).0), (StatusCode::UNPROCESSABLE_ENTITY, "card_token"), "{body}");
}
