//! Logging setup: `RUST_LOG` wins over `log.filter`; `log.format` picks people or machines.
//! The pretty format is coloured only on a terminal, and never when `NO_COLOR` is set
//! (<https://no-color.org>): a log file or a pipe gets plain text.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogConfig;

pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.filter));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if cfg.format == "json" {
        registry.with(fmt::layer().json()).try_init()
    } else {
        let ansi = use_colour(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR"));
        registry.with(fmt::layer().with_ansi(ansi)).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// Colour only for a terminal, and not when `NO_COLOR` is set to anything non-empty.
fn use_colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }
}
