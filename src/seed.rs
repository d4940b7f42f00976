//! Start-up data: the admin account from `[admin]`, and demo events for a first run.

use chrono::{Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use crate::{
    domain::{CategoryKind, DomainEvent, Payload, Role},
    http::AppState,
    store::{
        entities::{categories, events, users},
        record_event,
    },
};

/// Creates the admin account if missing; otherwise makes the account with that e-mail a live admin
/// whose password is the configured one, so changing `BOXOFFICE_ADMIN__PASSWORD` and restarting
/// takes effect.
pub async fn ensure_admin(state: &AppState) -> anyhow::Result<()> {
    let admin = &state.config.admin;
    if state.config.uses_default_admin_password() {
        tracing::warn!("the admin password is the built-in default: set BOXOFFICE_ADMIN__PASSWORD");
    }
    if state.config.uses_default_jwt_secret() {
        tracing::warn!("the JWT secret is the built-in default: set BOXOFFICE_AUTH__JWT_SECRET");
    }
    let email = admin.email.trim().to_lowercase();
    if let Some(existing) = users::Entity::find().filter(users::Column::Email.eq(email.clone())).one(&state.db).await? {
        // Verifying costs one hash, as a re-hash would, but writes nothing when all is as configured.
        let password_ok =
            state.auth.verify_password(admin.password.expose().to_string(), existing.password_hash.clone()).await;
        let role_ok = existing.role == Role::Admin && existing.deleted_at.is_none();
        if password_ok && role_ok {
            return Ok(());
        }
        let mut m: users::ActiveModel = existing.into();
        m.role = Set(Role::Admin);
        m.deleted_at = Set(None);
        if !password_ok {
            m.password_hash = Set(state.auth.hash_password(admin.password.expose().to_string()).await?);
        }
        m.updated_at = Set(Utc::now());
        let txn = state.db.begin().await?;
        let updated = m.update(&txn).await?;
        let event = DomainEvent::new(Payload::UserUpdated(updated.facts()));
        record_event(&txn, &event).await?;
        txn.commit().await?;
        tracing::info!(email = %admin.email, password_changed = !password_ok, "admin account brought in line with [admin]");
        return Ok(());
    }
    let req = crate::http::RegisterRequest {
        email,
        username: admin.username.clone(),
        password: admin.password.expose().to_string(),
        first_name: Some("Admin".into()),
        last_name: None,
        mobile_phone: None,
    };
    crate::http::create_user(state, req, Role::Admin).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(email = %admin.email, "admin account created");
    Ok(())
}

/// A few events when the catalogue is empty: a rush concert, a workshop, a free meetup.
pub async fn demo_data(state: &AppState) -> anyhow::Result<()> {
    if events::Entity::find().count(&state.db).await? > 0 {
        return Ok(());
    }
    let now = Utc::now();
    let mut cats = Vec::new();
    for (name, kind) in
        [("Concerts", CategoryKind::Paid), ("Workshops", CategoryKind::Paid), ("Meetups", CategoryKind::Free)]
    {
        let id = match categories::Entity::find().filter(categories::Column::Name.eq(name)).one(&state.db).await? {
            Some(c) => c.id,
            None => {
                let id = Uuid::now_v7();
                let row = categories::Model { id, name: name.into(), kind, created_at: now };
                crate::http::insert_category(state, row).await.map_err(|e| anyhow::anyhow!("{e}"))?;
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
            hold_seconds: state.config.booking.default_hold_seconds as i32,
            created_at: now,
            updated_at: now,
        };
        crate::http::insert_event(state, event).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    tracing::info!("demo events created");
    Ok(())
}
