//! Error building blocks every boundary shares.
//!
//! Each boundary has its own error type (`http::Error`, `actors::CallError`, `saga::SagaError`,
//! `bridge::BridgeError`, `notifier::NotifyError`, `store::mongo::AuditLogError`, ...). What they
//! have in common lives here: [`Unavailable`], the one way to say "a part this request needs is
//! down right now, try again" (the HTTP edge turns it into 503), carrying its cause as a
//! `#[source]` instead of a flattened string; and [`Report`], which prints an error with its
//! whole cause chain for the log.

use std::{error::Error as StdError, fmt, sync::Arc};

/// The cause of a failure, shareable (actor replies and commit results are cloned).
pub type Cause = Arc<dyn StdError + Send + Sync>;

/// A part of the system cannot serve the request now: `what` says which, `cause` why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}")]
pub struct Unavailable {
    pub what: &'static str,
    #[source]
    pub cause: Option<Cause>,
}

impl Unavailable {
    pub fn new(what: &'static str) -> Self {
        Self { what, cause: None }
    }

    pub fn because(what: &'static str, cause: impl StdError + Send + Sync + 'static) -> Self {
        Self { what, cause: Some(Arc::new(cause)) }
    }

    /// With a cause that is already shared (a commit result, another reply).
    pub fn shared(what: &'static str, cause: Cause) -> Self {
        Self { what, cause: Some(cause) }
    }
}

/// Displays an error and every cause below it: `outer: inner: root`.
pub struct Report<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_shows_the_whole_cause_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = Unavailable::because("the database", io);
        assert_eq!(Report(&e).to_string(), "the database: connection refused");
        assert_eq!(Report(&Unavailable::new("the committer")).to_string(), "the committer");
    }
}
