//! The `boxoffice` binary's side of `boxoffice loadtest`: the harness (crate
//! `boxoffice-loadtest`) is an HTTP client; this [`Host`] gives it what only Boxoffice itself
//! has: an embedded instance, the configured admin, and the orders table for the invariant check.

use anyhow::Context;
use boxoffice::{
    Application, Config,
    domain::OrderStatus,
    store::{self, entities::orders},
};
use boxoffice_loadtest::{Embedded, Host};
use futures::FutureExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

pub struct BoxofficeHost(pub Config);

#[async_trait::async_trait]
impl Host for BoxofficeHost {
    /// The configured admin password, or else the one a local Boxoffice generated into
    /// `admin.password_file` (running the harness beside the server).
    fn admin(&self) -> (String, String) {
        let admin = &self.0.admin;
        let password = match admin.password.expose() {
            "" => std::fs::read_to_string(&admin.password_file).map(|p| p.trim().to_string()).unwrap_or_default(),
            configured => configured.to_string(),
        };
        (admin.username.clone(), password)
    }

    async fn start_embedded(&self) -> anyhow::Result<Embedded> {
        let dir = std::env::temp_dir().join(format!("boxoffice-loadtest-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut c = self.0.clone();
        c.http.addr = "127.0.0.1:0".parse()?;
        c.grpc.addr = "127.0.0.1:0".into();
        c.database.url = format!("sqlite://{}/boxoffice.db?mode=rwc", dir.display()).into();
        c.mail.dir = dir.join("mail");
        c.seed.demo_data = false;
        // Every virtual user signs up and logs in from this one address.
        c.limits.auth_per_address_per_minute = 0;
        // Its own admin password and key, never a file beside the working directory.
        c.admin.password = boxoffice::secrets::random_token(18).into();
        c.auth.jwt_secret = boxoffice::secrets::random_token(48).into();
        let admin = (c.admin.username.clone(), c.admin.password.expose().to_string());
        let database_url = c.database.url.expose().to_string();
        let app = Application::build(c).await.context("starting the embedded Boxoffice")?;
        let url = format!("http://{}", app.local_addr());
        let grpc_url = app.grpc_addr().map(|a| format!("http://{a}"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        eprintln!("loadtest: started an embedded Boxoffice at {url} (SQLite in {})", dir.display());
        let stop = Box::new(move || {
            async move {
                let _ = tx.send(());
                let _ = task.await;
            }
            .boxed()
        });
        Ok(Embedded { url, grpc_url, database_url, admin, stop })
    }

    async fn stored_counts(&self, database_url: &str, event_id: Uuid) -> anyhow::Result<(u64, u64)> {
        let db = store::connect(database_url, 2).await.context("connecting to the database")?;
        let rows = orders::Entity::find().filter(orders::Column::EventId.eq(event_id)).all(&db).await?;
        let sum = |keep: fn(OrderStatus) -> bool| {
            rows.iter().filter(|o| keep(o.status)).map(|o| u64::from(o.quantity.max(0) as u32)).sum::<u64>()
        };
        Ok((sum(OrderStatus::is_hold), sum(|s| s == OrderStatus::Confirmed)))
    }
}
