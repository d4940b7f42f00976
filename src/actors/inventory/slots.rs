//! The slot arithmetic of one event, kept apart from timers and I/O so its invariant is easy to
//! test: `available + held + sold == total` and `held + sold <= total` after every operation.

use uuid::Uuid;

use crate::store::entities::events;

/// The event's settings the actor needs to take decisions without reading the database.
#[derive(Debug, Clone)]
pub struct EventTerms {
    pub id: Uuid,
    pub total: u32,
    pub price_cents: i64,
    pub currency: String,
    pub max_per_order: u32,
    pub hold_seconds: u32,
    /// Seats one person may hold and have bought; 0 = no limit.
    pub max_per_person: u32,
    /// Reservations need an admission from the waiting room.
    pub waiting_room: bool,
    pub admit_per_second: u32,
}

impl EventTerms {
    pub fn from_model(m: &events::Model) -> Self {
        Self {
            id: m.id,
            total: m.total_slots.max(0) as u32,
            price_cents: m.price_cents,
            currency: m.currency.clone(),
            max_per_order: m.max_per_order.max(1) as u32,
            hold_seconds: m.hold_seconds.max(1) as u32,
            max_per_person: m.max_per_person.max(0) as u32,
            waiting_room: m.waiting_room,
            admit_per_second: m.admit_per_second.max(1) as u32,
        }
    }

    pub fn is_free(&self) -> bool {
        self.price_cents == 0
    }
}

/// The slot arithmetic, kept apart from timers and I/O so its invariant is easy to test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    pub total: u32,
    pub held: u32,
    pub sold: u32,
}

impl Slots {
    pub fn available(&self) -> u32 {
        self.total - self.held - self.sold
    }

    /// `sold + held <= total`, so `available` is never negative and the three add up.
    pub fn is_consistent(&self) -> bool {
        self.held.checked_add(self.sold).is_some_and(|used| used <= self.total)
    }

    pub fn hold(&mut self, qty: u32) -> bool {
        if qty == 0 || qty > self.available() {
            return false;
        }
        self.held += qty;
        true
    }

    pub fn sell_held(&mut self, qty: u32) {
        debug_assert!(qty <= self.held);
        self.held -= qty;
        self.sold += qty;
    }

    pub fn sell(&mut self, qty: u32) -> bool {
        if qty == 0 || qty > self.available() {
            return false;
        }
        self.sold += qty;
        true
    }

    pub fn unhold(&mut self, qty: u32) {
        debug_assert!(qty <= self.held);
        self.held -= qty;
    }

    pub fn unsell(&mut self, qty: u32) {
        debug_assert!(qty <= self.sold);
        self.sold -= qty;
    }

    /// Capacity may change only while it still covers what is held and sold.
    pub fn resize(&mut self, total: u32) -> bool {
        if total < self.held + self.sold {
            return false;
        }
        self.total = total;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_never_exceed_capacity() {
        let mut s = Slots { total: 5, ..Default::default() };
        assert!(s.hold(3));
        assert!(!s.hold(3), "only 2 left");
        assert!(s.hold(2));
        assert_eq!(s.available(), 0);
        assert!(!s.sell(1));
        assert!(s.is_consistent());
    }

    #[test]
    fn selling_and_releasing_keep_the_sum_equal_to_total() {
        let mut s = Slots { total: 10, ..Default::default() };
        assert!(s.hold(4));
        s.sell_held(4);
        assert!(s.hold(3));
        s.unhold(3);
        s.unsell(1);
        assert_eq!((s.available(), s.held, s.sold), (7, 0, 3));
        assert_eq!(s.available() + s.held + s.sold, s.total);
    }

    #[test]
    fn capacity_cannot_drop_below_held_plus_sold() {
        let mut s = Slots { total: 10, ..Default::default() };
        assert!(s.hold(3));
        assert!(s.sell(4));
        assert!(!s.resize(6));
        assert!(s.resize(7));
        assert_eq!(s.available(), 0);
    }

    #[test]
    fn zero_quantity_is_never_granted() {
        let mut s = Slots { total: 10, ..Default::default() };
        assert!(!s.hold(0));
        assert!(!s.sell(0));
    }
}
