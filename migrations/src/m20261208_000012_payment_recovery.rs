//! Payments interrupted by a crash are resolved at the next start (`actors::recovery`).
//!
//! - `simulated_charges`: what the built-in test provider has charged, by idempotency key (the
//!   order's id), so that it remembers a charge across a restart as a real provider does, and a
//!   payment left `pending` can be asked about. A real provider keeps this on its side.
//! - A partial index on the payments still `pending`: the recovery sweep reads only those, and in
//!   a healthy system they are the few whose charge is running right now.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SimulatedCharges::Table)
                    .col(uuid(SimulatedCharges::OrderId).primary_key())
                    .col(string(SimulatedCharges::ProviderRef))
                    .col(big_integer(SimulatedCharges::AmountCents))
                    .col(string(SimulatedCharges::Currency))
                    .col(timestamp_with_time_zone(SimulatedCharges::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // Both backends take a partial index in this form.
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX idx_payments_pending ON payments (created_at) WHERE status = 'pending'")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX idx_payments_pending").await?;
        manager.drop_table(Table::drop().table(SimulatedCharges::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SimulatedCharges {
    Table,
    OrderId,
    ProviderRef,
    AmountCents,
    Currency,
    CreatedAt,
}
