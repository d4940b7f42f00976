//! The booking core: users and their refresh tokens, the catalogue (categories, events), orders
//! with their tickets, payments with their status history and refunds, the transactional outbox,
//! the audit log and idempotency keys.
//!
//! Slot counts are not stored as columns: an event's `held` and `sold` are the sums over its
//! live orders, so the database can never disagree with itself about capacity. The
//! `EventInventory` actor keeps the same numbers in memory and rebuilds them from `orders`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid(Users::Id).primary_key())
                    .col(string(Users::Email).unique_key())
                    .col(string(Users::Username).unique_key())
                    .col(string(Users::PasswordHash))
                    .col(string_null(Users::FirstName))
                    .col(string_null(Users::LastName))
                    .col(string_null(Users::MobilePhone))
                    .col(string(Users::Role))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Users::DeletedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(uuid(RefreshTokens::Id).primary_key())
                    .col(uuid(RefreshTokens::UserId))
                    .col(uuid(RefreshTokens::FamilyId))
                    .col(string(RefreshTokens::TokenHash))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::SpentAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_refresh_tokens_family", RefreshTokens::Table, &[RefreshTokens::FamilyId]).await?;
        index(manager, "idx_refresh_tokens_user", RefreshTokens::Table, &[RefreshTokens::UserId]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Categories::Table)
                    .col(uuid(Categories::Id).primary_key())
                    .col(string(Categories::Name).unique_key())
                    .col(string(Categories::Kind))
                    .col(timestamp_with_time_zone(Categories::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(uuid(Events::Id).primary_key())
                    .col(string(Events::Name))
                    .col(uuid(Events::CategoryId))
                    .col(big_integer(Events::PriceCents))
                    .col(string_len(Events::Currency, 3))
                    .col(timestamp_with_time_zone(Events::StartsAt))
                    .col(integer(Events::TotalSlots))
                    .col(integer(Events::MaxPerOrder))
                    .col(integer(Events::HoldSeconds))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .col(timestamp_with_time_zone(Events::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::CategoryId)
                            .to(Categories::Table, Categories::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_events_starts_at", Events::Table, &[Events::StartsAt]).await?;
        index(manager, "idx_events_category", Events::Table, &[Events::CategoryId]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(uuid(Orders::Id).primary_key())
                    .col(uuid(Orders::UserId))
                    .col(uuid(Orders::EventId))
                    .col(string(Orders::Kind))
                    .col(integer(Orders::Quantity))
                    .col(big_integer(Orders::AmountCents))
                    .col(string_len(Orders::Currency, 3))
                    .col(string(Orders::Status))
                    .col(timestamp_with_time_zone_null(Orders::ExpiresAt))
                    .col(big_integer_null(Orders::RefundCents))
                    .col(timestamp_with_time_zone(Orders::CreatedAt))
                    .col(timestamp_with_time_zone(Orders::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // Recovery reads the live orders of one event; listings read one user's orders.
        index(manager, "idx_orders_event_status", Orders::Table, &[Orders::EventId, Orders::Status]).await?;
        index(manager, "idx_orders_user", Orders::Table, &[Orders::UserId]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Tickets::Table)
                    .col(uuid(Tickets::Id).primary_key())
                    .col(uuid(Tickets::OrderId))
                    .col(uuid(Tickets::EventId))
                    .col(uuid(Tickets::UserId))
                    .col(string(Tickets::Code).unique_key())
                    .col(timestamp_with_time_zone(Tickets::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_tickets_order", Tickets::Table, &[Tickets::OrderId]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .col(uuid(Payments::Id).primary_key())
                    .col(uuid(Payments::OrderId))
                    .col(uuid(Payments::UserId))
                    .col(big_integer(Payments::AmountCents))
                    .col(string_len(Payments::Currency, 3))
                    .col(string(Payments::Status))
                    .col(string_null(Payments::FailureReason))
                    .col(string_null(Payments::ProviderRef))
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_payments_order", Payments::Table, &[Payments::OrderId]).await?;
        index(manager, "idx_payments_user", Payments::Table, &[Payments::UserId]).await?;

        manager
            .create_table(
                Table::create()
                    .table(PaymentStatusHistory::Table)
                    .col(big_pk_auto(PaymentStatusHistory::Id))
                    .col(uuid(PaymentStatusHistory::PaymentId))
                    .col(string(PaymentStatusHistory::Status))
                    .col(string_null(PaymentStatusHistory::Detail))
                    .col(timestamp_with_time_zone(PaymentStatusHistory::At))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_payment_history_payment", PaymentStatusHistory::Table, &[PaymentStatusHistory::PaymentId])
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Refunds::Table)
                    .col(uuid(Refunds::Id).primary_key())
                    .col(uuid(Refunds::OrderId))
                    .col(uuid_null(Refunds::PaymentId))
                    .col(big_integer(Refunds::AmountCents))
                    .col(string(Refunds::Reason))
                    .col(timestamp_with_time_zone(Refunds::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    // The auto-increment id is the relay's cursor: rows are published in commit
                    // order, which keeps per-aggregate order.
                    .col(big_pk_auto(Outbox::Id))
                    .col(uuid(Outbox::EventId).unique_key())
                    .col(string(Outbox::EventType))
                    .col(uuid(Outbox::AggregateId))
                    .col(text(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::OccurredAt))
                    .col(timestamp_with_time_zone_null(Outbox::PublishedAt))
                    .to_owned(),
            )
            .await?;
        // Partial: only the backlog is indexed, so publishing a row removes one entry and adds
        // none. Same syntax on PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX idx_outbox_unpublished ON outbox (id) WHERE published_at IS NULL")
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLogs::Table)
                    .col(big_pk_auto(AuditLogs::Id))
                    // Unique so a redelivered event is a no-op.
                    .col(uuid(AuditLogs::EventId).unique_key())
                    .col(string(AuditLogs::EventType))
                    .col(text(AuditLogs::Data))
                    .col(timestamp_with_time_zone(AuditLogs::OccurredAt))
                    .col(timestamp_with_time_zone(AuditLogs::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_audit_logs_type", AuditLogs::Table, &[AuditLogs::EventType, AuditLogs::Id]).await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(uuid(IdempotencyKeys::UserId))
                    .col(string(IdempotencyKeys::Key))
                    .col(string(IdempotencyKeys::Route))
                    .col(string(IdempotencyKeys::RequestHash))
                    .col(integer_null(IdempotencyKeys::StatusCode))
                    .col(text_null(IdempotencyKeys::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::UserId)
                            .col(IdempotencyKeys::Route)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            AuditLogs::Table.into_iden(),
            Outbox::Table.into_iden(),
            Refunds::Table.into_iden(),
            PaymentStatusHistory::Table.into_iden(),
            Payments::Table.into_iden(),
            Tickets::Table.into_iden(),
            Orders::Table.into_iden(),
            Events::Table.into_iden(),
            Categories::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

async fn index<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(*col);
    }
    manager.create_index(stmt.to_owned()).await
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Email,
    Username,
    PasswordHash,
    FirstName,
    LastName,
    MobilePhone,
    Role,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RefreshTokens {
    Table,
    Id,
    UserId,
    FamilyId,
    TokenHash,
    ExpiresAt,
    SpentAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Categories {
    Table,
    Id,
    Name,
    Kind,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    Id,
    Name,
    CategoryId,
    PriceCents,
    Currency,
    StartsAt,
    TotalSlots,
    MaxPerOrder,
    HoldSeconds,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Orders {
    Table,
    Id,
    UserId,
    EventId,
    Kind,
    Quantity,
    AmountCents,
    Currency,
    Status,
    ExpiresAt,
    RefundCents,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tickets {
    Table,
    Id,
    OrderId,
    EventId,
    UserId,
    Code,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Payments {
    Table,
    Id,
    OrderId,
    UserId,
    AmountCents,
    Currency,
    Status,
    FailureReason,
    ProviderRef,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PaymentStatusHistory {
    Table,
    Id,
    PaymentId,
    Status,
    Detail,
    At,
}

#[derive(DeriveIden, Clone, Copy)]
enum Refunds {
    Table,
    Id,
    OrderId,
    PaymentId,
    AmountCents,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Outbox {
    Table,
    Id,
    EventId,
    EventType,
    AggregateId,
    Payload,
    OccurredAt,
    PublishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLogs {
    Table,
    Id,
    EventId,
    EventType,
    Data,
    OccurredAt,
    ReceivedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    UserId,
    Key,
    Route,
    RequestHash,
    StatusCode,
    ResponseBody,
    CreatedAt,
}
