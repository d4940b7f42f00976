//! A Postman collection (v2.1) generated from the OpenAPI document, so it never drifts from the
//! API: `GET /postman.json` (its `baseUrl` is the address it was fetched from) and
//! `boxoffice postman [--base-url URL]`.
//!
//! One folder per tag (`auth` first, `compat` last), one request per operation, named after its
//! summary (or its operation id when the summary is longer than a name should be), path ids as
//! `:id` variables, and a body the request schema accepts ([`example`]). The bearer flow is
//! pre-wired: "Log in" sends `{{login}}` and `{{password}}`, the collection authenticates with
//! `{{token}}`, and the login and refresh requests store the tokens they get back (public
//! operations send no token). Each run of a request sends a fresh `Idempotency-Key`
//! (`{{$guid}}`): a fixed one would replay the first answer, and an empty one is refused.
//!
//! `scripts/postman.sh` (part of the test command) runs the collection with newman against a
//! fresh server.

use axum::{Json, Router, extract::State, http::HeaderMap, routing::get};
use serde_json::{Map, Value, json};

use super::{AppState, docs::document};

pub fn router() -> Router<AppState> {
    Router::new().route("/postman.json", get(served))
}

async fn served(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:8080");
    Json(collection(&format!("http://{host}"), state.config.compat.enabled))
}

/// Stores the tokens a login or refresh answers, for the requests after it.
const KEEP_TOKENS: &str = "const body = pm.response.json();\n\
    if (body && body.access_token) {\n\
      pm.collectionVariables.set('token', body.access_token);\n\
      pm.collectionVariables.set('refreshToken', body.refresh_token);\n\
    }";

/// The collection for a Boxoffice at `base_url` (with the compat routes when `compat`).
pub fn collection(base_url: &str, compat: bool) -> Value {
    let doc = serde_json::to_value(document(compat)).unwrap_or_default();
    let mut folders: Vec<(String, Vec<Value>)> = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
            let request = request(&doc, path, method, op);
            match folders.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, items)) => items.push(request),
                None => folders.push((tag, vec![request])),
            }
        }
    }
    // A run from the top logs in first, and the old systems' routes come after the API's own.
    folders.sort_by_key(|(tag, _)| match tag.as_str() {
        "auth" => 0,
        "compat" => 2,
        _ => 1,
    });
    json!({
        "info": {
            "name": "Boxoffice",
            "description": "Generated from Boxoffice's OpenAPI document. Set `login` and `password`, then \
                run \"Log in\" (auth) first: it stores the access token every other request sends.",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{token}}", "type": "string"}]},
        "variable": [
            {"key": "baseUrl", "value": base_url},
            {"key": "login", "value": "admin"},
            {"key": "password", "value": ""},
            {"key": "token", "value": ""},
            {"key": "refreshToken", "value": ""},
        ],
        "item": folders.into_iter().map(|(name, item)| json!({"name": name, "item": item})).collect::<Vec<_>>(),
    })
}

fn request(doc: &Value, path: &str, method: &str, op: &Value) -> Value {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => format!(":{name}"),
            None => s.to_owned(),
        })
        .collect();
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let of = |place: &str| -> Vec<Value> {
        params
            .iter()
            .filter(|p| p["in"] == place)
            .map(|p| {
                let value = if p["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key")) {
                    // Postman's dynamic variable: a new UUID each time the request is sent.
                    json!("{{$guid}}")
                } else {
                    match example(doc, &p["schema"]) {
                        Value::Null => json!(""),
                        Value::String(s) => json!(s),
                        other => json!(other.to_string()),
                    }
                };
                json!({"key": p["name"], "value": value, "description": p["description"]})
            })
            .collect()
    };
    let mut url = json!({
        "raw": format!("{{{{baseUrl}}}}/{}", segments.join("/")),
        "host": ["{{baseUrl}}"],
        "path": segments,
    });
    let (path_vars, query) = (of("path"), of("query"));
    if !path_vars.is_empty() {
        url["variable"] = Value::Array(path_vars);
    }
    if !query.is_empty() {
        // Optional filters, off until filled in.
        let query: Vec<Value> = query
            .into_iter()
            .map(|mut q| {
                q["disabled"] = json!(true);
                q
            })
            .collect();
        url["query"] = Value::Array(query);
    }
    let mut headers = of("header");
    let mut request = json!({"method": method.to_uppercase(), "url": url});
    let description: Vec<&str> = ["summary", "description"].iter().filter_map(|k| op[*k].as_str()).collect();
    if !description.is_empty() {
        request["description"] = json!(description.join("\n\n"));
    }
    if let Some(schema) = op["requestBody"]["content"]["application/json"]["schema"].as_object() {
        headers.push(json!({"key": "Content-Type", "value": "application/json"}));
        let body = example(doc, &Value::Object(schema.clone()));
        request["body"] = json!({
            "mode": "raw",
            "raw": serde_json::to_string_pretty(&body).unwrap_or_default(),
            "options": {"raw": {"language": "json"}},
        });
    } else if let Some(schema) = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"].as_object()
    {
        // The compat layer's form routes (`/register`, `/login`, `/pay`), sent as forms.
        let body = example(doc, &Value::Object(schema.clone()));
        // A form has no `null`: an optional field that is `null` is left out.
        let fields = body.as_object().into_iter().flatten().filter(|(_, v)| !v.is_null()).map(|(k, v)| {
            json!({"key": k, "value": v.as_str().map_or_else(|| v.to_string(), str::to_owned), "type": "text"})
        });
        request["body"] = json!({"mode": "urlencoded", "urlencoded": fields.collect::<Vec<_>>()});
    }
    request["header"] = Value::Array(headers);
    // An operation whose security allows no token sends none.
    let public = op["security"].as_array().is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(Map::is_empty)));
    if public {
        request["auth"] = json!({"type": "noauth"});
    }
    let name = if path == "/api/v1/auth/login" { "Log in".to_owned() } else { name(op, path) };
    let mut item = json!({"name": name, "request": request});
    // Every log-in, the compat layer's too, answers the same pair.
    if path.ends_with("/login") || path == "/api/v1/auth/refresh" {
        item["event"] = json!([{"listen": "test", "script": {"type": "text/javascript", "exec": KEEP_TOKENS.lines().collect::<Vec<_>>()}}]);
    }
    if path == "/api/v1/auth/refresh" {
        item["request"]["body"]["raw"] = json!("{\n  \"refresh_token\": \"{{refreshToken}}\"\n}");
    }
    if path == "/api/v1/auth/login" {
        item["request"]["body"]["raw"] = json!("{\n  \"login\": \"{{login}}\",\n  \"password\": \"{{password}}\"\n}");
    }
    item
}

/// The longest name a request gets: what fits in Postman's sidebar.
pub const MAX_NAME_CHARS: usize = 60;

/// A request's name: the first sentence of the operation's summary when it is short enough for a
/// name, else its operation id (unique, and what generated clients call it). The whole summary
/// is the request's description.
fn name(op: &Value, path: &str) -> String {
    let summary = op["summary"].as_str().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    let first = summary.split_inclusive(". ").next().unwrap_or_default().trim().trim_end_matches('.');
    if !first.is_empty() && first.chars().count() <= MAX_NAME_CHARS {
        return first.to_owned();
    }
    op["operationId"].as_str().unwrap_or(path).to_owned()
}

/// A value `schema` accepts, following `doc`'s `$ref`s: the schema's first example when it has
/// one (the fields whose rules a generator cannot invert have one: `docs::schema`), else the
/// smallest value its type, format and bounds allow. An optional property that may be `null` is
/// `null`. The collection's bodies are these, and tests/api/docs.rs sends one to every documented
/// route, so a schema whose example its route refuses fails there.
pub fn example(doc: &Value, schema: &Value) -> Value {
    example_at(doc, schema, 0)
}

fn example_at(doc: &Value, schema: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(given) = schema["examples"].get(0).or_else(|| schema.get("example")) {
        return given.clone();
    }
    if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        return example_at(doc, &doc["components"]["schemas"][name], depth + 1);
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.iter().find(|v| !v.is_null())) {
        return first.clone();
    }
    for combined in ["allOf", "oneOf", "anyOf"] {
        if let Some(first) = schema[combined].as_array().and_then(|a| a.iter().find(|s| s["type"] != "null")) {
            return example_at(doc, first, depth + 1);
        }
    }
    let ty = match &schema["type"] {
        Value::Array(types) => types.iter().find(|t| *t != "null").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    match ty.as_str() {
        Some("object") => {
            let required: Vec<&Value> = schema["required"].as_array().into_iter().flatten().collect();
            let mut out = Map::new();
            for (k, v) in schema["properties"].as_object().into_iter().flatten() {
                let optional = !required.contains(&&json!(k));
                let value =
                    if optional && nullable(doc, v, depth) { Value::Null } else { example_at(doc, v, depth + 1) };
                out.insert(k.clone(), value);
            }
            Value::Object(out)
        }
        Some("array") => json!([example_at(doc, &schema["items"], depth + 1)]),
        Some("integer") | Some("number") => {
            let floor = schema["minimum"].as_i64().or_else(|| schema["exclusiveMinimum"].as_i64().map(|m| m + 1));
            let ceiling = schema["maximum"].as_i64().or_else(|| schema["exclusiveMaximum"].as_i64().map(|m| m - 1));
            json!(floor.unwrap_or_else(|| ceiling.map_or(1, |c| c.min(1))))
        }
        Some("boolean") => json!(false),
        Some("string") => match schema["format"].as_str() {
            Some("uuid") => json!("00000000-0000-0000-0000-000000000000"),
            Some("date-time") => json!("2030-01-01T20:00:00Z"),
            Some("date") => json!("1990-01-01"),
            Some("email") => json!("ada@example.com"),
            _ => {
                let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
                let max = schema["maxLength"].as_u64().map_or(usize::MAX, |m| m as usize);
                json!("example".chars().cycle().take(min.max(7).min(max)).collect::<String>())
            }
        },
        _ => Value::Null,
    }
}

/// Whether `schema` accepts `null`.
fn nullable(doc: &Value, schema: &Value, depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        return nullable(doc, &doc["components"]["schemas"][name], depth + 1);
    }
    let typed = match &schema["type"] {
        Value::Array(types) => types.iter().any(|t| t == "null"),
        ty => ty == "null",
    };
    typed
        || ["oneOf", "anyOf"]
            .iter()
            .any(|k| schema[*k].as_array().is_some_and(|a| a.iter().any(|s| nullable(doc, s, depth + 1))))
}
