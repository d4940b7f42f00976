//! The outbox relay keeps one cursor instead of marking every row it published.
//!
//! Before, the relay set `published_at` on each row after the bus took it: every domain event was
//! written twice, and on PostgreSQL the second write was a full new row version with new entries
//! in every index (the partial index on `published_at` made the update non-HOT). Now the relay
//! keeps its position in `outbox_relay`, one row updated once per batch.
//!
//! A cursor is only as good as the order rows become visible in. On SQLite one writer at a time
//! means ids become visible in order, and the position is an id. On PostgreSQL several writers
//! (the pool, the other nodes) commit in any order, so a smaller id can become visible after a
//! larger one was published. Each row there records the transaction that wrote it (`tx`, its
//! 64-bit id), and the relay reads in (`tx`, `id`) order only rows whose transaction is older than
//! every transaction still running (`pg_snapshot_xmin`): those can no longer change, and every
//! row not yet visible belongs to a newer transaction, after the cursor. On SQLite `tx` is 0.
//!
//! Rows already in the table get `tx` 0, and the cursor starts right before the oldest row not
//! yet marked published (or after the last row), so nothing pending is lost across the upgrade.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        // A constant default first: existing rows get 0 without a table rewrite.
        db.execute_unprepared("ALTER TABLE outbox ADD COLUMN tx BIGINT NOT NULL DEFAULT 0").await?;
        if postgres {
            db.execute_unprepared(
                "ALTER TABLE outbox ALTER COLUMN tx SET DEFAULT (pg_current_xact_id()::text::bigint)",
            )
            .await?;
            db.execute_unprepared("CREATE INDEX idx_outbox_tx ON outbox (tx, id)").await?;
        }
        db.execute_unprepared(
            "CREATE TABLE outbox_relay (name VARCHAR(32) NOT NULL PRIMARY KEY, \
             through_tx BIGINT NOT NULL, through_id BIGINT NOT NULL)",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO outbox_relay (name, through_tx, through_id) SELECT 'outbox', 0, \
             COALESCE((SELECT MIN(id) - 1 FROM outbox WHERE published_at IS NULL), (SELECT MAX(id) FROM outbox), 0)",
        )
        .await?;
        db.execute_unprepared("DROP INDEX idx_outbox_unpublished").await?;
        db.execute_unprepared("ALTER TABLE outbox DROP COLUMN published_at").await?;
        Ok(())
    }

    /// Brings back the marks: rows up to the cursor count as published, the rest as pending.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(timestamp_with_time_zone_null(Outbox::PublishedAt))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "UPDATE outbox SET published_at = CURRENT_TIMESTAMP WHERE EXISTS (SELECT 1 FROM outbox_relay r \
             WHERE r.name = 'outbox' AND (outbox.tx < r.through_tx OR (outbox.tx = r.through_tx AND outbox.id <= r.through_id)))",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX idx_outbox_unpublished ON outbox (id) WHERE published_at IS NULL").await?;
        db.execute_unprepared("DROP TABLE outbox_relay").await?;
        if postgres {
            db.execute_unprepared("DROP INDEX idx_outbox_tx").await?;
        }
        db.execute_unprepared("ALTER TABLE outbox DROP COLUMN tx").await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    PublishedAt,
}
