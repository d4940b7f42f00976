pub mod actors;
pub mod bridge;
pub mod config;
pub mod domain;
pub mod store;
