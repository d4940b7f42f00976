//! sea-orm entities, one module per table (schema in `migrations/`).
//!
//! Status, kind and role columns are typed: the enums in [`crate::domain`] are sea-orm active
//! enums stored as their snake_case names, so no string status crosses the store's edge.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod users {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub email: String,
        pub username: String,
        pub password_hash: String,
        pub first_name: Option<String>,
        pub last_name: Option<String>,
        pub mobile_phone: Option<String>,
        pub birth_day: Option<ChronoDate>,
        pub role: crate::domain::Role,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        pub deleted_at: Option<ChronoDateTimeUtc>,
        /// Bumped by a password change or a deletion: access tokens of an older one are dead.
        pub token_generation: i32,
    }
    no_relations!();

    impl Model {
        /// What the account's domain events say about it.
        pub fn facts(&self) -> crate::domain::events::UserFacts {
            crate::domain::events::UserFacts {
                user_id: self.id,
                email: self.email.clone(),
                username: self.username.clone(),
                role: self.role,
            }
        }
    }
}

pub mod refresh_tokens {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        /// All tokens rotated from one login share a family; re-use of a spent token revokes it.
        pub family_id: Uuid,
        /// SHA-256 of the secret half; the secret itself is never stored.
        pub token_hash: String,
        pub expires_at: ChronoDateTimeUtc,
        pub spent_at: Option<ChronoDateTimeUtc>,
        pub revoked_at: Option<ChronoDateTimeUtc>,
        pub created_at: ChronoDateTimeUtc,
        /// The account's token generation when issued: a token from an older one is refused.
        pub generation: i32,
    }
    no_relations!();
}

pub mod revoked_tokens {
    use sea_orm::entity::prelude::*;

    /// Access tokens ended by a logout before their `exp`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revoked_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jti: Uuid,
        pub user_id: Uuid,
        pub expires_at: ChronoDateTimeUtc,
        pub revoked_at: ChronoDateTimeUtc,
    }
    no_relations!();
}

pub mod login_failures {
    use sea_orm::entity::prelude::*;

    /// One login attempt that has not succeeded, by subject (an account id, or `login:<text>`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_failures")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub subject: String,
        pub failed_at: ChronoDateTimeUtc,
        /// The client's address (`''` for rows from before it was kept).
        pub address: String,
    }
    no_relations!();
}

pub mod categories {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "categories")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub kind: crate::domain::CategoryKind,
        pub created_at: ChronoDateTimeUtc,
    }
    no_relations!();

    impl Model {
        pub fn facts(&self) -> crate::domain::events::CategoryFacts {
            crate::domain::events::CategoryFacts { category_id: self.id, name: self.name.clone(), kind: self.kind }
        }
    }
}

pub mod events {
    use sea_orm::entity::prelude::*;

    /// Serde because an event's new terms cross the cluster wire to its owner node.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub category_id: Uuid,
        pub price_cents: i64,
        pub currency: String,
        pub starts_at: ChronoDateTimeUtc,
        pub total_slots: i32,
        pub max_per_order: i32,
        pub hold_seconds: i32,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        /// Seats one person may hold and have bought for this event; 0 = no limit.
        pub max_per_person: i32,
        /// Orders and registrations need an admission from the event's queue.
        pub waiting_room: bool,
        /// People the waiting room admits per second.
        pub admit_per_second: i32,
    }
    no_relations!();

    impl Model {
        /// The public shape of an event in `event.*` domain events.
        pub fn facts(&self) -> crate::domain::events::EventFacts {
            crate::domain::events::EventFacts {
                event_id: self.id,
                name: self.name.clone(),
                category_id: self.category_id,
                price_cents: self.price_cents,
                currency: self.currency.clone(),
                starts_at: self.starts_at,
                total_slots: self.total_slots,
                max_per_order: self.max_per_order,
                hold_seconds: self.hold_seconds,
            }
        }
    }
}

/// One person's place in an event's waiting room (see the migration for how its state is read).
pub mod queue_entries {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "queue_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub event_id: Uuid,
        pub user_id: Uuid,
        /// Join order within the event, dense from 1.
        pub seq: i64,
        pub joined_at: ChronoDateTimeUtc,
        /// `None`: waiting; in the future: admitted; in the past: the admission expired.
        pub admitted_until: Option<ChronoDateTimeUtc>,
    }
    no_relations!();
}

/// One person's entry on an event's waiting list.
pub mod waitlist_entries {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "waitlist_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub event_id: Uuid,
        pub user_id: Uuid,
        pub quantity: i32,
        /// The order asked in, within the event.
        pub seq: i64,
        pub status: crate::domain::ListStatus,
        /// The hold or registration offered, once `offered`.
        pub order_id: Option<Uuid>,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }
    no_relations!();
}

pub mod orders {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "orders")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub event_id: Uuid,
        /// `order` (hold, then pay) or `registration` (free, one click).
        pub kind: crate::domain::OrderKind,
        pub quantity: i32,
        pub amount_cents: i64,
        pub currency: String,
        pub status: crate::domain::OrderStatus,
        /// When the hold lapses; `None` once the order no longer holds slots.
        pub expires_at: Option<ChronoDateTimeUtc>,
        pub refund_cents: Option<i64>,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }
    no_relations!();

    impl Model {
        /// What the order's domain events say about it.
        pub fn facts(&self) -> crate::domain::OrderFacts {
            crate::domain::OrderFacts {
                order_id: self.id,
                event_id: self.event_id,
                user_id: self.user_id,
                quantity: self.quantity.max(0) as u32,
                amount_cents: self.amount_cents,
                currency: self.currency.clone(),
            }
        }
    }
}

pub mod tickets {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tickets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub order_id: Uuid,
        pub event_id: Uuid,
        pub user_id: Uuid,
        pub code: String,
        pub created_at: ChronoDateTimeUtc,
    }
    no_relations!();
}

pub mod payments {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub order_id: Uuid,
        pub user_id: Uuid,
        pub amount_cents: i64,
        pub currency: String,
        pub status: crate::domain::PaymentStatus,
        pub failure_reason: Option<String>,
        pub provider_ref: Option<String>,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }
    no_relations!();
}

/// What the built-in simulated payment provider has charged (its own records, not Boxoffice's):
/// see `actors::payment::SimulatedProvider`.
pub mod simulated_charges {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "simulated_charges")]
    pub struct Model {
        /// The idempotency key: one charge per order.
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        pub provider_ref: String,
        pub amount_cents: i64,
        pub currency: String,
        pub created_at: ChronoDateTimeUtc,
    }
    no_relations!();
}

pub mod payment_status_history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payment_status_history")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub payment_id: Uuid,
        pub status: crate::domain::PaymentStatus,
        pub detail: Option<String>,
        pub at: ChronoDateTimeUtc,
    }
    no_relations!();
}

pub mod refunds {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refunds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub order_id: Uuid,
        pub payment_id: Option<Uuid>,
        pub amount_cents: i64,
        pub reason: String,
        pub created_at: ChronoDateTimeUtc,
    }
    no_relations!();
}

pub mod outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub event_id: Uuid,
        pub event_type: String,
        pub aggregate_id: Uuid,
        pub payload: String,
        pub occurred_at: ChronoDateTimeUtc,
        /// The writing transaction's id on PostgreSQL, 0 on SQLite (see [`crate::store::outbox`]).
        pub tx: i64,
    }
    no_relations!();
}

pub mod processed_events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "processed_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: Uuid,
        pub processed_at: ChronoDateTimeUtc,
    }
    no_relations!();
}

/// Messages sent or tried, one per domain event that called for one (its id is the event's).
pub mod notifications {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        /// `email`, the one channel today.
        pub channel: String,
        pub subject: String,
        pub to_address: String,
        pub status: crate::domain::NotificationStatus,
        /// Why the last try failed.
        pub error: Option<String>,
        pub created_at: ChronoDateTimeUtc,
        pub sent_at: Option<ChronoDateTimeUtc>,
    }
    no_relations!();
}

pub mod idempotency_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub route: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub request_hash: String,
        /// `None` while the first request with this key is still running.
        pub status_code: Option<i32>,
        pub response_body: Option<String>,
        pub created_at: ChronoDateTimeUtc,
    }
    no_relations!();
}
