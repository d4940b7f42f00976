//! Everything that carries domain events out of the transaction that produced them.
//!
//! The [`outbox`] relay reads committed outbox rows in order and hands them to the [`bus`]; in
//! the embedded mode the bus is in-process and delivers to the Notifier and the Auditor, and
//! to live listeners. The Kafka bridge plugs in at the same place.

pub mod bus;
pub mod outbox;
