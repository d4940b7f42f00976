//! The OpenAPI document (`/openapi.json`) and interactive docs (`/docs`: Swagger UI, its files
//! built into the binary, so the docs work without internet, under a Content-Security-Policy
//! that lets the page load nothing from anywhere else).

use axum::Router;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Boxoffice", description = "Ticket booking: events, holds, orders, payments."),
    paths(
        super::auth::register, super::auth::login, super::auth::refresh, super::auth::logout,
        super::users::list, super::users::read, super::users::update, super::users::remove,
        super::health::healthz, super::health::readyz,
        super::catalog::list_categories, super::catalog::create_category,
        super::catalog::list_events, super::catalog::read_event, super::catalog::create_event,
        super::catalog::update_event,
        super::orders::create, super::orders::register, super::orders::list, super::orders::read,
        super::orders::cancel,
        super::payments::create, super::payments::list, super::payments::read,
        super::audit::list, super::streams::availability, super::streams::availability_of_many,
        super::cluster::view, super::cluster::owner,
        super::queues::join, super::queues::mine, super::queues::mine_live,
        super::queues::join_list, super::queues::my_entry, super::queues::leave_list,
        super::notifications::list,
    ),
    components(schemas(
        super::auth::RegisterRequest, super::auth::LoginRequest, super::auth::RefreshRequest,
        super::auth::TokenPair, super::users::UserView, super::users::UpdateUser,
        super::error::ErrorBody, super::error::ErrorDetail,
    )),
    servers((url = "/", description = "this Boxoffice")),
    modifiers(&BearerAuth, &OperationIds, &ErrorResponses),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Every operation gets an id from its method and path (`getOrdersById`, `postEventsByIdQueue`):
/// unique by construction, where the handlers' function names (`list`, `read`, ...) repeat
/// across modules, and stable for generated clients. Routes outside `/api/v1` (the compat
/// layer's) are prefixed `compat` (`compatPostRegistrations`, `compatGetV1OrdersById`), so
/// `/registrations` and `/api/v1/registrations` stay apart.
pub(super) struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let mut name = String::new();
            let (prefix, rest) = match path.strip_prefix("/api/v1") {
                Some(rest) => ("", rest),
                None => ("compat", path.as_str()),
            };
            for segment in rest.split('/').filter(|s| !s.is_empty()) {
                let word = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(param) => format!("by_{param}"),
                    None => segment.to_owned(),
                };
                for part in word.split(['_', '-']).filter(|p| !p.is_empty()) {
                    let mut chars = part.chars();
                    if let Some(first) = chars.next() {
                        name.push(first.to_ascii_uppercase());
                        name.push_str(chars.as_str());
                    }
                }
            }
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, operation) in operations {
                if let Some(op) = operation {
                    op.operation_id = Some(if prefix.is_empty() {
                        format!("{method}{name}")
                    } else {
                        let (first, rest) = method.split_at(1);
                        format!("{prefix}{}{rest}{name}", first.to_ascii_uppercase())
                    });
                }
            }
        }
    }
}

/// The error answers every operation may give, declared where the handlers do not name them
/// (the one error type decides them, so they follow from what an operation takes): `503` always
/// (with `Retry-After`); `401` and `403` when it needs a token; `400`, `413`, `415` and `422` when
/// it takes a body; `422` for malformed parameters; `404` for a path with an id; `429` for the
/// login, sign-up and refresh limits.
pub(super) struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let rate_limited = [
                "/api/v1/auth/login",
                "/api/v1/auth/register",
                "/api/v1/auth/refresh",
                "/register",
                "/login",
                "/v1/login",
                "/v1/register",
                "/api/users",
                "/api/users/login",
                "/api/registration/register",
                "/api/auth/login",
            ]
            .contains(&path.as_str());
            let with_id = path.contains('{');
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in operations.into_iter().flatten() {
                // No `security` of its own: the document's bearer requirement. An empty requirement
                // among its own makes the token optional.
                let optional = |r: &utoipa::openapi::security::SecurityRequirement| {
                    serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
                };
                let needs_token = op.security.as_ref().is_none_or(|s| !s.iter().any(optional));
                let has_body = op.request_body.is_some();
                let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let mut add = |status: &str, description: &str| {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description).into());
                };
                add("503", "a part Boxoffice needs is unavailable; retry after `Retry-After` seconds");
                if needs_token {
                    add("401", "no token, or an invalid, expired or revoked one");
                    add("403", "the token's holder may not do this");
                }
                if has_body {
                    add("400", "the body is not JSON");
                    add("413", "the body is larger than `http.body_limit_bytes`");
                    add("415", "the body is not `application/json`");
                    add("422", "a field is missing or invalid (`field` names it)");
                }
                if has_params {
                    add("422", "a parameter is malformed (`field` names it)");
                }
                if with_id {
                    add("404", "no such resource");
                }
                if rate_limited {
                    add("429", "too many attempts; retry after `Retry-After` seconds");
                }
            }
        }
    }
}

/// What the docs pages may load: their own files, and the document from this server.
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The document this server serves: `/api/v1`, and the compat layer's routes when it is on.
pub fn document(compat: bool) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if compat {
        doc.merge(super::compat::CompatDoc::openapi());
    }
    NoControlCharacters.modify(&mut doc);
    doc
}

/// A text with no control character, the edge's rule for every string of a body or query
/// (`http::error::parse_json`), as a JSON Schema pattern (ECMA and Python regular expressions).
pub const NO_CONTROLS: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
/// The same, and not blank.
const NOT_BLANK_NO_CONTROLS: &str =
    r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

/// Writes the edge's control-character rule into every string schema of the document (bodies,
/// parameters, components) that has no pattern, format or enumeration of its own, so that what
/// the document calls valid the server accepts (and the fuzzer checks both ways).
struct NoControlCharacters;

impl Modify for NoControlCharacters {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        let mut each = |schema: &mut RefOr<utoipa::openapi::schema::Schema>| no_controls(schema);
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.values_mut().for_each(&mut each);
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    parameter.schema.iter_mut().for_each(&mut each);
                }
                if let Some(body) = operation.request_body.as_mut() {
                    body.content.values_mut().flat_map(|c| c.schema.as_mut()).for_each(&mut each);
                }
            }
            for parameter in item.parameters.iter_mut().flatten() {
                parameter.schema.iter_mut().for_each(&mut each);
            }
        }
    }
}

fn no_controls(schema: &mut utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>) {
    use utoipa::openapi::{
        RefOr,
        schema::{ArrayItems, Schema, SchemaType, Type},
    };
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(o) => {
            let is_string = match &o.schema_type {
                SchemaType::Type(t) => *t == Type::String,
                SchemaType::Array(types) => types.contains(&Type::String),
                SchemaType::AnyValue => false,
            };
            if is_string && o.format.is_none() && o.enum_values.is_none() {
                match o.pattern.as_deref() {
                    None => o.pattern = Some(NO_CONTROLS.to_owned()),
                    Some(r"\S") => o.pattern = Some(NOT_BLANK_NO_CONTROLS.to_owned()),
                    // Other patterns spell out the characters they take (ASCII classes).
                    Some(_) => {}
                }
            }
            o.properties.values_mut().for_each(no_controls);
        }
        Schema::Array(a) => {
            if let ArrayItems::RefOrSchema(items) = &mut a.items {
                no_controls(items);
            }
        }
        Schema::OneOf(o) => o.items.iter_mut().for_each(no_controls),
        Schema::AllOf(o) => o.items.iter_mut().for_each(no_controls),
        Schema::AnyOf(o) => o.items.iter_mut().for_each(no_controls),
        _ => {}
    }
}

pub fn router(compat: bool) -> Router<AppState> {
    // `/docs` itself redirects to `/docs/`, the UI's page.
    Router::from(SwaggerUi::new("/docs").url("/openapi.json", document(compat))).layer(axum::middleware::map_response(
        |mut res: axum::response::Response| async move {
            res.headers_mut()
                .insert(axum::http::header::CONTENT_SECURITY_POLICY, axum::http::HeaderValue::from_static(DOCS_CSP));
            res
        },
    ))
}

/// The document's schemas of the fields whose rules live in `domain` (e-mail, username,
/// password, ...): `#[schema(schema_with = schema::email)]` on a request field states the rule
/// the handler checks, from the one place it is written. The `_or_null` forms are for optional
/// fields (absent and `null` are both accepted there).
///
/// Each carries an example the rule accepts, one account's worth that fit together (the password
/// contains neither the username nor the e-mail): no generator can invert a pattern, and the
/// Postman collection's bodies and the test that sends every documented body to its route
/// (tests/api/docs.rs) start from these.
pub(crate) mod schema {
    use serde_json::json;
    use utoipa::openapi::{
        Object, ObjectBuilder,
        schema::{SchemaType, Type},
    };

    use crate::domain::{Email, Password, Username};

    fn text(nullable: bool) -> ObjectBuilder {
        let ty =
            if nullable { SchemaType::from_iter([Type::String, Type::Null]) } else { SchemaType::new(Type::String) };
        ObjectBuilder::new().schema_type(ty)
    }

    fn email_schema(nullable: bool) -> Object {
        text(nullable)
            .max_length(Some(Email::MAX_CHARS))
            .pattern(Some(Email::PATTERN))
            .examples([json!("ada@example.com")])
            .build()
    }

    fn username_schema(nullable: bool) -> Object {
        text(nullable)
            .description(Some("3 to 32 letters, digits, `_`, `-` or `.`."))
            .pattern(Some(Username::PATTERN))
            .examples([json!("ada_lovelace")])
            .build()
    }

    fn password_schema(nullable: bool) -> Object {
        text(nullable)
            .description(Some(
                "10 to 128 characters, not one of the 10,000 most common passwords, not containing the \
                 username or e-mail (old or new).",
            ))
            .min_length(Some(Password::MIN_CHARS))
            .max_length(Some(Password::MAX_CHARS))
            .pattern(Some(r"\S"))
            .examples([json!("correct horse battery staple")])
            .build()
    }

    pub fn email() -> Object {
        email_schema(false)
    }

    pub fn email_or_null() -> Object {
        email_schema(true)
    }

    pub fn username() -> Object {
        username_schema(false)
    }

    pub fn username_or_null() -> Object {
        username_schema(true)
    }

    pub fn password() -> Object {
        password_schema(false)
    }

    pub fn password_or_null() -> Object {
        password_schema(true)
    }

    /// A profile name: at most 100 characters (blank means none).
    pub fn name_or_null() -> Object {
        text(true).max_length(Some(100)).build()
    }

    /// Digits, spaces and `+ - ( )`, at most 32 (blank means none).
    pub fn phone_or_null() -> Object {
        text(true)
            .description(Some("Digits, spaces and `+ - ( )`."))
            .pattern(Some("^[0-9 +()-]{0,32}$"))
            .examples([json!("+44 20 7946 0000")])
            .build()
    }

    /// A login or username that is not blank.
    pub fn login() -> Object {
        text(false)
            .description(Some("Username or e-mail."))
            .pattern(Some(r"\S"))
            .examples([json!("ada_lovelace")])
            .build()
    }

    /// A payment provider's card token (test cards: `tok_ok`, `tok_declined`, `tok_slow`).
    pub fn card_token() -> Object {
        text(false)
            .description(Some(
                "A card token from the payment provider. Test cards: `tok_ok`, `tok_declined`, `tok_slow`.",
            ))
            .pattern(Some("^tok_[A-Za-z0-9_]{1,60}$"))
            .examples([json!("tok_ok")])
            .build()
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, path::Path};

    /// Every type in `src/` that derives `ToSchema`, as (its name in the document, where it is).
    /// The name is the `#[schema(as = ...)]` one when there is one, else the type's.
    fn schema_types(dir: &Path, found: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                schema_types(&path, found);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("#[derive(") {
                rest = &rest[start..];
                let derive_end = rest.find(")]").unwrap();
                let derives = &rest[..derive_end];
                rest = &rest[derive_end..];
                if !derives.split([',', '(', ' ', '\n', ':']).any(|w| w == "ToSchema") {
                    continue;
                }
                // The attributes between the derive and the item are the container's.
                let item = [" struct ", " enum ", "\nstruct ", "\nenum "]
                    .iter()
                    .filter_map(|k| rest.find(k).map(|at| (at, at + k.len())))
                    .min()
                    .unwrap();
                let ident: String = rest[item.1..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let renamed = rest[..item.0]
                    .lines()
                    .map(str::trim_start)
                    .filter(|line| line.starts_with("#[schema("))
                    .find_map(|line| line.split_once("as = "))
                    .map(|(_, path)| {
                        let path: String =
                            path.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                        path.rsplit("::").next().unwrap_or_default().to_owned()
                    });
                found.push((renamed.unwrap_or(ident.clone()), format!("{} {ident}", path.display())));
            }
        }
    }

    /// utoipa keys the document's schemas by name alone: of two types with the same name, the
    /// last one registered replaces the other, and every operation that uses the first is then
    /// documented with the second's fields (how `POST /registrations` came to show the .NET
    /// sign-up). So no two types may share a name, whichever documents they are in.
    #[test]
    fn no_two_schema_types_share_a_name() {
        let mut found = Vec::new();
        schema_types(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
        assert!(found.iter().any(|(name, _)| name == "UserView"), "the scan finds the schema types: {found:?}");
        let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, at) in &found {
            by_name.entry(name).or_default().push(at);
        }
        let shared: Vec<_> = by_name.into_iter().filter(|(_, at)| at.len() > 1).collect();
        assert!(shared.is_empty(), "give each a unique `#[schema(as = ...)]`: {shared:?}");
    }
}
