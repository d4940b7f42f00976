//! Everything that carries domain events out of the transaction that produced them.
//!
//! The [`outbox`] relay reads committed outbox rows in order and hands them to the [`bus`]. In
//! the embedded mode the bus is in-process and delivers to the Notifier and the Auditor; with
//! Kafka configured it publishes to [`kafka`] topics and consumer groups feed the same actors.
//! Either way, live listeners (streams) get every published event. Failures are [`error`]s with
//! their causes.

pub mod bus;
pub mod error;
pub mod kafka;
pub mod outbox;
