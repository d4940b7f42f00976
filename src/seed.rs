//! Start-up data: the admin account from `[admin]`, and demo events for a first run.

use anyhow::Context;
use chrono::{Duration, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::{
    auth::AuthKeys,
    config::Config,
    domain::{CategoryKind, Email, Role, Username},
    secrets,
    store::{
        self,
        entities::{categories, events, users},
    },
};

/// The admin account from `[admin]`.
///
/// With a configured password: creates the account if missing, otherwise makes the account with
/// that e-mail a live admin whose password is the configured one, so changing
/// `BOXOFFICE_ADMIN__PASSWORD` and restarting takes effect. With none: the start that creates the
/// account gives it a random password (see [`crate::secrets`]), and later starts leave it alone.
pub async fn ensure_admin(db: &DatabaseConnection, auth: &AuthKeys, config: &Config) -> anyhow::Result<()> {
    let admin = &config.admin;
    let email = admin.email.trim().to_lowercase();
    let existing = users::Entity::find().filter(users::Column::Email.eq(email.clone())).one(db).await?;
    let configured = admin.password.expose();
    if configured.is_empty() {
        if existing.is_some() {
            return Ok(());
        }
        let password = secrets::random_token(18);
        // Staged before the account exists and put in place once it does: neither an account
        // whose password is nowhere, nor a file whose password no account has.
        let file = |e: std::io::Error| {
            anyhow::Error::new(e).context(format!("writing the admin password to {}", admin.password_file.display()))
        };
        let staged = secrets::Staged::write(&admin.password_file, &password).map_err(file)?;
        create_admin(db, auth, config, &email, &password).await?;
        staged.put(true).map_err(file)?;
        tracing::warn!(
            login = %admin.username,
            password = %password,
            file = %admin.password_file.display(),
            "created the admin account with a generated password (shown only this once; also in the file)"
        );
        return Ok(());
    }
    if let Some(existing) = existing {
        // Verifying costs one hash, as a re-hash would, but writes nothing when all is as configured.
        let password_ok = auth.verify_password(configured.to_string(), existing.password_hash.clone()).await;
        let role_ok = existing.role == Role::Admin && existing.deleted_at.is_none();
        if password_ok && role_ok {
            return Ok(());
        }
        let mut m: users::ActiveModel = existing.into();
        m.role = Set(Role::Admin);
        m.deleted_at = Set(None);
        if !password_ok {
            m.password_hash = Set(auth.hash_password(configured.to_string()).await?);
        }
        m.updated_at = Set(Utc::now());
        store::accounts::update_user(db, m).await?;
        tracing::info!(email = %admin.email, password_changed = !password_ok, "admin account brought in line with [admin]");
        return Ok(());
    }
    create_admin(db, auth, config, &email, configured).await?;
    tracing::info!(email = %admin.email, "admin account created");
    Ok(())
}

async fn create_admin(
    db: &DatabaseConnection,
    auth: &AuthKeys,
    config: &Config,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let admin = &config.admin;
    let email = Email::parse(email).map_err(anyhow::Error::msg).context("admin.email")?;
    let username = Username::parse(&admin.username).map_err(anyhow::Error::msg).context("admin.username")?;
    let now = Utc::now();
    let user = users::Model {
        id: Uuid::now_v7(),
        email: email.as_str().to_string(),
        username: username.as_str().to_string(),
        password_hash: auth.hash_password(password.to_string()).await?,
        first_name: Some("Admin".into()),
        last_name: None,
        mobile_phone: None,
        birth_day: None,
        role: Role::Admin,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        token_generation: 0,
    };
    store::accounts::insert_user(db, user).await.context("another account has the admin's username")?;
    Ok(())
}

/// A few events when the catalogue is empty: a rush concert, a workshop, a free meetup.
pub async fn demo_data(db: &DatabaseConnection, config: &Config) -> anyhow::Result<()> {
    if events::Entity::find().count(db).await? > 0 {
        return Ok(());
    }
    let now = Utc::now();
    let mut cats = Vec::new();
    for (name, kind) in
        [("Concerts", CategoryKind::Paid), ("Workshops", CategoryKind::Paid), ("Meetups", CategoryKind::Free)]
    {
        let id = match categories::Entity::find().filter(categories::Column::Name.eq(name)).one(db).await? {
            Some(c) => c.id,
            None => {
                let id = Uuid::now_v7();
                let row = categories::Model { id, name: name.into(), kind, created_at: now };
                store::catalog::insert_category(db, row).await?;
                id
            }
        };
        cats.push(id);
    }
    let demo = [
        ("The Midnight Owls — Reunion Tour", cats[0], 4_500, 500, 30, 4),
        ("Rust for Booking Systems (workshop)", cats[1], 12_000, 40, 14, 2),
        ("Community Meetup: Reactive Systems", cats[2], 0, 120, 7, 1),
    ];
    for (name, category_id, price, total, days, max) in demo {
        let event = events::Model {
            id: Uuid::now_v7(),
            name: name.into(),
            category_id,
            price_cents: price,
            currency: "EUR".into(),
            starts_at: now + Duration::days(days),
            total_slots: total,
            max_per_order: max,
            hold_seconds: config.booking.default_hold_seconds as i32,
            max_per_person: config.booking.default_max_per_person as i32,
            waiting_room: false,
            admit_per_second: 10,
            created_at: now,
            updated_at: now,
        };
        store::catalog::insert_event(db, event).await?;
    }
    tracing::info!("demo events created");
    Ok(())
}
