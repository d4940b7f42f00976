//! Boxoffice: a ticket-booking backend built to stay correct and fast during an on-sale rush.
//!
//! How the parts fit:
//! - [`http`]: the REST API (axum). Handlers validate input into domain types and call actors,
//!   always with a timeout.
//! - [`actors`]: one `EventInventory` per event owns its slots (the only writer), supervised and
//!   rebuilt from the database after a failure; an `OrderSaga` per order drives payment and
//!   cancellation; the `PaymentActor` talks to the provider; `Notifier` and `Auditor` consume
//!   domain events.
//! - [`store`]: sea-orm entities and the group committer: every slot change and its outbox row
//!   commit together, many holds per transaction, and nobody is answered before the commit.
//! - [`bridge`]: the outbox relay and the in-process bus that carry domain events to consumers.
//! - [`cluster`]: cluster mode: leases and the commit fence, membership over ractor_cluster,
//!   forwarding a request to the node that owns its event.
//! - [`config`]: typed, layered configuration; [`app`]: start-up and graceful shutdown.
//! - [`error`]: what every boundary's error type shares (`Unavailable`, cause-chain reports).
//! - [`retry`]: the one backoff and the one restart policy every retry loop and supervisor uses.
//! - [`secrets`]: the JWT key and admin password generated (and kept in `var/`) when none is set.

pub mod actors;
pub mod app;
pub mod auth;
pub mod bridge;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod http;
pub mod instruments;
pub mod retry;
pub mod secrets;
pub mod seed;
pub mod store;
pub mod telemetry;

pub use app::Application;
pub use config::Config;

/// The dependency rule of the layout above, checked: domain ← store ← bridge ← actors ← cluster ← http ←
/// app. A module may use those to its left, never those to its right.
#[cfg(test)]
mod layering {
    use std::path::Path;

    /// Each layer and the crate paths its files must not mention.
    const FORBIDDEN: &[(&str, &[&str])] = &[
        ("domain", &["crate::store", "crate::bridge", "crate::actors", "crate::cluster", "crate::http", "crate::app"]),
        ("store", &["crate::bridge", "crate::actors", "crate::cluster", "crate::http", "crate::app"]),
        ("bridge", &["crate::actors", "crate::cluster", "crate::http", "crate::app"]),
        ("actors", &["crate::cluster", "crate::http", "crate::app"]),
        ("cluster", &["crate::http", "crate::app"]),
        ("http", &["crate::app", "crate::seed"]),
    ];

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_layer_uses_only_the_layers_below_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut broken = Vec::new();
        for (layer, forbidden) in FORBIDDEN {
            let mut files = Vec::new();
            let dir = root.join(layer);
            sources(&dir, &mut files);
            assert!(!files.is_empty(), "no sources under src/{layer}");
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                // `use crate::{ actors::...` spreads the path over lines: look at every `crate::`
                // use block as one line.
                let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
                for bad in *forbidden {
                    let name = bad.trim_start_matches("crate::");
                    if flat.contains(bad) || uses_nested(&flat, name) {
                        broken.push(format!("{} uses {bad}", file.display()));
                    }
                }
            }
        }
        assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
    }

    /// Whether a `use crate::{ ... }` block names `name::` at its top level.
    fn uses_nested(flat: &str, name: &str) -> bool {
        flat.match_indices("use crate::{").any(|(i, _)| {
            let rest = &flat[i + "use crate::{".len()..];
            let mut depth = 1;
            let mut top = String::new();
            for c in rest.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    _ if depth == 1 => top.push(c),
                    _ => {}
                }
            }
            top.split(',').any(|item| item.trim().starts_with(&format!("{name}::")) || item.trim() == name)
        })
    }
}
