//! Domain vocabulary shared by actors, store and HTTP: statuses, domain events, and the
//! validated newtypes the HTTP layer parses input into (actors only ever see valid data).

pub mod events;

use sea_orm::{DeriveActiveEnum, EnumIter, sea_query::StringLen};
use serde::{Deserialize, Serialize};

pub use events::{DomainEvent, EventType, OrderFacts, Payload, SlotCounts};

// The statuses and kinds below are the typed columns of their tables (stored as their snake_case
// names, as before): the store reads and writes them as these enums, never as free strings.

/// Lifecycle of an order. `Pending` and `Paying` hold slots; `Confirmed` has sold them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, EnumIter, DeriveActiveEnum,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paying,
    Confirmed,
    Cancelled,
    Expired,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paying => "paying",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// The states in which an order holds slots (not yet sold, not yet given back).
    pub const HOLDING: &'static [Self] = &[Self::Pending, Self::Paying];
    /// The states in which an order occupies slots: held or sold.
    pub const LIVE: &'static [Self] = &[Self::Pending, Self::Paying, Self::Confirmed];

    /// Whether an order in this state occupies slots as a hold.
    pub fn is_hold(self) -> bool {
        Self::HOLDING.contains(&self)
    }

    /// Whether a payment may start now, and if not, why (the one place these rules live).
    pub fn check_payable(self) -> Result<(), OrderConflict> {
        match self {
            Self::Pending => Ok(()),
            Self::Paying => Err(OrderConflict::PaymentInProgress),
            Self::Confirmed => Err(OrderConflict::AlreadyPaid),
            Self::Expired => Err(OrderConflict::HoldExpired),
            Self::Cancelled => Err(OrderConflict::Cancelled),
        }
    }

    /// Whether the customer may cancel now: a hold not being paid, or a sale (refunded).
    pub fn check_cancellable(self) -> Result<(), OrderConflict> {
        match self {
            Self::Pending | Self::Confirmed => Ok(()),
            Self::Paying => Err(OrderConflict::PaymentInProgress),
            Self::Expired | Self::Cancelled => Err(OrderConflict::NotCancellable(self)),
        }
    }
}

/// Why an order cannot make the move asked of it (also a cluster answer, hence serde).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderConflict {
    #[error("a payment for this order is running")]
    PaymentInProgress,
    #[error("this order is already paid")]
    AlreadyPaid,
    #[error("the hold on this order has expired; nothing was charged")]
    HoldExpired,
    #[error("this order was cancelled")]
    Cancelled,
    #[error("an order that is {} cannot be cancelled", .0.as_str())]
    NotCancellable(OrderStatus),
}

/// How an order came to be: a paid order (hold, then pay) or a free one-click registration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, EnumIter, DeriveActiveEnum,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    Order,
    Registration,
}

/// Where a person stands on an event's waiting list (see `actors::inventory::waitlist`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, EnumIter, DeriveActiveEnum,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ListStatus {
    Waiting,
    /// Seats were set aside for them (a hold, or a registration for a free event).
    Offered,
    /// They left the list.
    Left,
}

impl ListStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Offered => "offered",
            Self::Left => "left",
        }
    }
}

/// Where a message to a person stands (see `actors::notifier`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, EnumIter, DeriveActiveEnum,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// About to be handed to the mail server.
    Pending,
    Sent,
    /// The last try failed; the event is offered again.
    Failed,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

/// Why a hold or a sale gave its slots back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    Expired,
    Cancelled,
}

impl ReleaseReason {
    pub fn status(self) -> OrderStatus {
        match self {
            Self::Expired => OrderStatus::Expired,
            Self::Cancelled => OrderStatus::Cancelled,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, EnumIter, DeriveActiveEnum,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, EnumIter, DeriveActiveEnum,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CategoryKind {
    Free,
    Paid,
}

impl CategoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Paid => "paid",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, EnumIter, DeriveActiveEnum,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    /// Box-office staff selling at the door: may register and order on behalf of others, and
    /// nothing else of an admin's.
    Staff,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Staff => "staff",
            Self::Admin => "admin",
        }
    }
}

/// A lower-cased e-mail address with one `@` and a dot in its domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// [`Email::parse`]'s rule as a regular expression, for the API's documents: printable ASCII,
    /// one `@`, a dotted domain of three or more characters neither starting nor ending with a dot.
    pub const PATTERN: &'static str = r"^[!-?A-~]+@[!-\-/-?A-~][!-?A-~]*\.[!-?A-~]*[!-\-/-?A-~]$";
    pub const MAX_CHARS: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim().to_lowercase();
        let (local, domain) = s.split_once('@').ok_or("must be an e-mail address")?;
        if local.is_empty()
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains('@')
            || s.len() > Self::MAX_CHARS
            || !s.chars().all(|c| c.is_ascii_graphic())
        {
            return Err("must be an e-mail address");
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 3 to 32 characters of letters, digits, `_`, `-` and `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// [`Username::parse`]'s rule as a regular expression, for the API's documents.
    pub const PATTERN: &'static str = r"^[A-Za-z0-9_.-]{3,32}$";

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        let ok_len = (3..=32).contains(&s.chars().count());
        let ok_chars = s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok_len || !ok_chars || s.contains('@') {
            return Err("must be 3 to 32 letters, digits, '_', '-' or '.'");
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 10,000 most common passwords, most common first: Mark Burnett's list, as published in the
/// npm package `common-password` 0.1.2 (`lib/10k most common.txt`, ISC; the same list is SecLists'
/// `10k-most-common.txt`, MIT), line endings made LF, nothing else changed.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

fn is_common(password: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().collect()).contains(password.to_lowercase().as_str())
}

/// A password that passes the policy: 10 to 128 characters, not only spaces, not one of the
/// 10,000 most common passwords, and not containing the account's username or e-mail address.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 128;

    /// `personal` are the account's username and e-mail (either may be empty); the error says
    /// which rule failed.
    pub fn parse(raw: &str, personal: &[&str]) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters (this one has {chars})", Self::MIN_CHARS));
        }
        if chars > Self::MAX_CHARS {
            return Err("must be at most 128 characters".into());
        }
        if raw.trim().is_empty() {
            return Err("must not be only spaces".into());
        }
        if is_common(raw) {
            return Err("is one of the 10,000 most common passwords; choose another".into());
        }
        let lower = raw.to_lowercase();
        for p in personal.iter().map(|p| p.trim().to_lowercase()).filter(|p| p.chars().count() >= 3) {
            let local = p.split_once('@').map(|(local, _)| local).unwrap_or(&p);
            if lower.contains(p.as_str()) || (local.chars().count() >= 3 && lower.contains(local)) {
                return Err("must not contain your username or e-mail address".into());
            }
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The longest text each kind of input may be, in characters: checked at every door before the
/// text is stored, hashed or searched (README, Security). Anything longer is a 422 naming the field.
pub mod limits {
    /// A login: a username or an e-mail address ([`super::Email::MAX_CHARS`]).
    pub const LOGIN: usize = super::Email::MAX_CHARS;
    /// A password given to log in (a longer one was never accepted: [`super::Password::MAX_CHARS`]).
    pub const PASSWORD: usize = super::Password::MAX_CHARS;
    /// A person's first or last name.
    pub const PERSON_NAME: usize = 100;
    /// An event's name.
    pub const EVENT_NAME: usize = 200;
    /// A category's name.
    pub const CATEGORY_NAME: usize = 100;
    /// A search text (`q`).
    pub const SEARCH: usize = 100;
    /// What the audit trail keeps of the login text of a refused attempt.
    pub const AUDITED_LOGIN: usize = 64;
}

/// Why a text input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must be at most {0} characters")]
    TooLong(usize),
    /// NUL, the other C0 and C1 controls and DEL: no name, login or search holds one, and
    /// PostgreSQL cannot store a NUL at all.
    #[error("must not contain control characters")]
    Control,
}

/// A one-line text input, trimmed: at most `max` characters, no control characters.
pub fn one_line(raw: &str, max: usize) -> Result<&str, TextError> {
    let text = raw.trim();
    // Counted only up to the limit: a 4 MB text costs no more than a short one.
    if text.chars().nth(max).is_some() {
        return Err(TextError::TooLong(max));
    }
    if text.chars().any(char::is_control) {
        return Err(TextError::Control);
    }
    Ok(text)
}

/// The first `max` characters of `text`, marked with `…` when cut (for records of refused input).
pub fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The highest price of one seat, in cents (ten million in any currency): bounded at the edge so
/// that no sum of money Boxoffice computes can come near `i64::MAX`.
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;

/// The highest `max_per_person` an event may set (the largest event has a million seats).
pub const MAX_PER_PERSON: u32 = 1_000_000;

/// What `quantity` seats at `price_cents` cost, or `None` if it does not fit in an `i64`. Every
/// amount is computed here, checked: an unchecked product once wrapped 4 seats at
/// 4,611,686,018,427,387,905 cents into an order for 4 cents.
pub fn order_amount(price_cents: i64, quantity: u32) -> Option<i64> {
    price_cents.checked_mul(i64::from(quantity)).filter(|a| *a >= 0)
}

/// Three upper-case ASCII letters (ISO 4217 shape).
pub fn parse_currency(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim().to_ascii_uppercase();
    if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(s)
    } else {
        Err("must be a three-letter currency code")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_text_is_bounded_and_free_of_control_characters() {
        assert_eq!(one_line("  ann  ", 5), Ok("ann"));
        assert_eq!(one_line("annabel", 5), Err(TextError::TooLong(5)));
        assert_eq!(one_line(&"a".repeat(4_000_000), 254), Err(TextError::TooLong(254)));
        assert_eq!(one_line("ad\u{0}min", 50), Err(TextError::Control));
        assert_eq!(one_line("a\nb", 50), Err(TextError::Control));
        assert_eq!(one_line("a\u{7f}b", 50), Err(TextError::Control));
        assert_eq!(one_line("Zoë Ωmega", 9), Ok("Zoë Ωmega"), "characters, not bytes");
        assert_eq!(truncated("abcdef", 3), "abc…");
        assert_eq!(truncated("abc", 3), "abc");
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@x.io", "ann@localhost", "a b@x.io", "a@b@c.io"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn an_order_amount_that_would_wrap_is_refused() {
        assert_eq!(order_amount(4_500, 4), Some(18_000));
        assert_eq!(order_amount(MAX_PRICE_CENTS, 100), Some(100_000_000_000));
        assert_eq!(order_amount(4_611_686_018_427_387_905, 4), None, "wrapped to 4 before");
        assert_eq!(order_amount(i64::MAX, 2), None, "wrapped to -2 before");
        assert_eq!(order_amount(-1, 1), None);
    }

    #[test]
    fn the_password_policy_names_the_rule_that_failed() {
        let me = ["ann_01", "ann.smith@example.com"];
        let fails = |raw: &str, rule: &str| {
            let err = Password::parse(raw, &me).err().unwrap_or_else(|| panic!("{raw:?} accepted"));
            assert!(err.contains(rule), "{raw:?}: {err}");
        };
        fails("12345678", "at least 10 characters");
        fails("password", "at least 10 characters");
        fails("        ", "at least 10 characters");
        fails("          ", "only spaces");
        fails("1234567890", "most common");
        fails("QwertyuioP", "most common");
        fails("my-ANN_01-rocks", "username or e-mail");
        fails("ann.smith-forever", "username or e-mail");
        fails(&"x".repeat(129), "at most 128");
        assert!(Password::parse("correct horse battery", &me).is_ok());
        assert!(Password::parse("correct horse battery", &["", ""]).is_ok());
    }

    #[test]
    fn usernames_reject_at_signs_and_short_names() {
        assert!(Username::parse("ann_01").is_ok());
        assert!(Username::parse("an").is_err());
        assert!(Username::parse("ann@x").is_err());
    }
}
