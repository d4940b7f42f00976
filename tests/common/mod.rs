//! The fixtures every suite shares (api, backbone, inventory; each includes this file as its
//! `common` module): a fresh database — SQLite in a temporary directory, or a new PostgreSQL
//! database when `BOXOFFICE_TEST_POSTGRES_URL` is set — and the real application spawned on
//! `127.0.0.1:0` with a client that hides the HTTP plumbing (not the assertions).

pub mod prometheus;

use std::time::Duration;

use boxoffice::{Application, Config};
use reqwest::{Client, Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const ADMIN_PASSWORD: &str = "tests-only-Passw0rd-9431";

pub struct TestApp {
    pub base: String,
    /// `http://ip:port` of the gRPC API.
    pub grpc: String,
    pub client: Client,
    pub db: DatabaseConnection,
    /// The committer's connection.
    pub writer: DatabaseConnection,
    pub admin_token: String,
    pub mail_dir: std::path::PathBuf,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// A SQLite file in `dir`, whatever the environment asks for.
pub fn sqlite_database(dir: &std::path::Path) -> String {
    format!("sqlite://{}/boxoffice.db?mode=rwc", dir.display())
}

/// The database URL for one test: a new database on the test PostgreSQL server, or a SQLite
/// file in `dir`.
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match std::env::var("BOXOFFICE_TEST_POSTGRES_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!("bx_test_{}", Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url).await.expect("test PostgreSQL reachable");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
            let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
            format!("{base}/{name}")
        }
        _ => sqlite_database(dir),
    }
}

/// The configuration tests run with: cheap password hashing, no demo data, a fast `tok_slow`.
pub fn test_config(db_url: String, mail_dir: std::path::PathBuf) -> Config {
    let mut c = Config::default();
    c.http.addr = "127.0.0.1:0".parse().unwrap();
    c.database.url = db_url.into();
    c.database.max_connections = 8;
    c.admin.password = ADMIN_PASSWORD.into();
    c.auth.jwt_secret = "a-test-secret-that-is-long-enough-0123456789".into();
    // Only used by tests that empty the two above; kept beside the mail directory.
    let var = mail_dir.parent().unwrap_or(&mail_dir).join("var");
    c.admin.password_file = var.join("admin-password");
    c.auth.jwt_secret_file = var.join("jwt-secret");
    c.auth.argon2_memory_kib = 64;
    c.auth.argon2_iterations = 1;
    c.seed.demo_data = false;
    // A free port each: tests run side by side.
    c.grpc.addr = "127.0.0.1:0".into();
    c.payment.slow_ms = 1_500;
    c.mail.dir = mail_dir;
    c
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database(dir.path()).await;
        let mut config = test_config(url, dir.path().join("mail"));
        tweak(&mut config);
        Self::start(config, dir).await
    }

    /// Starts (or restarts) an app on `config`, keeping `dir` alive with it.
    pub async fn start(config: Config, dir: tempfile::TempDir) -> Self {
        Self::start_with_admin(config, dir, None).await
    }

    /// [`TestApp::start`], logging the admin in with `admin_password` (default: the configured
    /// one, or the generated one from its file).
    pub async fn start_with_admin(config: Config, dir: tempfile::TempDir, admin_password: Option<String>) -> Self {
        let app = Application::build(config.clone()).await.expect("app builds");
        let base = format!("http://{}", app.local_addr());
        let grpc = app.grpc_addr().map(|a| format!("http://{a}")).unwrap_or_default();
        let db = app.db();
        let writer = app.state().writer.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let client = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let mut t = Self {
            base,
            grpc,
            client,
            db,
            writer,
            admin_token: String::new(),
            mail_dir: config.mail.dir.clone(),
            config,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        };
        let password = admin_password.unwrap_or_else(|| t.admin_password());
        t.admin_token = t.login(&t.config.admin.username.clone(), &password).await;
        t
    }

    /// Shuts the app down gracefully and returns what is needed to start it again.
    pub async fn stop(mut self) -> (Config, tempfile::TempDir) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        let config = self.config.clone();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        (config, dir)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap();
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    /// The configured admin password, or the generated one from its file.
    pub fn admin_password(&self) -> String {
        match self.config.admin.password.expose() {
            "" => std::fs::read_to_string(&self.config.admin.password_file)
                .expect("a generated admin password")
                .trim()
                .into(),
            configured => configured.into(),
        }
    }

    pub async fn login(&self, login: &str, password: &str) -> String {
        let (s, body) = self.post("/api/v1/auth/login", None, json!({"login": login, "password": password})).await;
        assert_eq!(s, StatusCode::OK, "login failed: {body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Signs up a user called `name` and returns (id, access token).
    pub async fn signup(&self, name: &str) -> (Uuid, String) {
        let (s, body) = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": format!("{name}@example.com"), "username": name, "password": "password-123"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "sign-up failed: {body}");
        let id = Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
        (id, self.login(name, "password-123").await)
    }

    pub async fn category(&self, kind: &str) -> Uuid {
        let name = format!("{kind}-{}", Uuid::new_v4().simple());
        let (s, body) =
            self.post("/api/v1/categories", Some(&self.admin_token), json!({"name": name, "kind": kind})).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        Uuid::parse_str(body["id"].as_str().unwrap()).unwrap()
    }

    /// Creates an event; `price_cents` 0 makes it free.
    pub async fn event(&self, price_cents: i64, total: i64, hold_seconds: i64) -> Uuid {
        self.event_with(price_cents, total, hold_seconds, 10).await
    }

    pub async fn event_with(&self, price_cents: i64, total: i64, hold_seconds: i64, max_per_order: i64) -> Uuid {
        self.event_limited(price_cents, total, hold_seconds, max_per_order, None).await
    }

    /// An event with an explicit `max_per_person` (0: no limit; `None`: the configured default).
    pub async fn event_limited(
        &self,
        price_cents: i64,
        total: i64,
        hold_seconds: i64,
        max_per_order: i64,
        max_per_person: Option<i64>,
    ) -> Uuid {
        let category = self.category(if price_cents == 0 { "free" } else { "paid" }).await;
        let mut event = json!({
            "name": format!("Event {}", Uuid::new_v4().simple()),
            "category_id": category,
            "price_cents": price_cents,
            "currency": "EUR",
            "starts_at": "2030-01-01T20:00:00Z",
            "total_slots": total,
            "max_per_order": max_per_order,
            "hold_seconds": hold_seconds,
        });
        if let Some(max) = max_per_person {
            event["max_per_person"] = json!(max);
        }
        let (s, body) = self.post("/api/v1/events", Some(&self.admin_token), event).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        Uuid::parse_str(body["id"].as_str().unwrap()).unwrap()
    }

    /// (available, held, sold, total) of an event, from the API.
    pub async fn counts(&self, event: Uuid) -> (u64, u64, u64, u64) {
        let (s, e) = self.get(&format!("/api/v1/events/{event}"), None).await;
        assert_eq!(s, StatusCode::OK, "{e}");
        let n = |k: &str| e[k].as_u64().unwrap();
        (n("available_slots"), n("held_slots"), n("sold_slots"), n("total_slots"))
    }

    pub async fn order(&self, token: &str, event: Uuid, quantity: i64) -> (StatusCode, Value) {
        self.post("/api/v1/orders", Some(token), json!({"event_id": event, "quantity": quantity})).await
    }

    pub async fn pay(&self, token: &str, order: &Value, card: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/payments",
            Some(token),
            json!({"order_id": order["id"], "amount_cents": order["amount_cents"], "card_token": card}),
        )
        .await
    }

    /// Audit log entries of one type (admin view), after the relay caught up.
    pub async fn audit(&self, event_type: &str) -> Vec<Value> {
        let (s, body) =
            self.get(&format!("/api/v1/audit-logs?event_type={event_type}&limit=100"), Some(&self.admin_token)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    /// Waits until `check` holds, polling; fails the test after `secs`.
    pub async fn eventually<F, Fut>(&self, secs: u64, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while tokio::time::Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    /// The e-mails written so far, as raw text.
    pub fn mails(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.mail_dir) else { return vec![] };
        dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
