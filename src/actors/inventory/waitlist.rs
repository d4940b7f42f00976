//! The event's waiting list, as its inventory keeps it: people who asked for `quantity` seats of a
//! sold-out event, in the order they asked. Plain bookkeeping; the actor writes it durably and
//! makes the offers.
//!
//! When seats come back, the first waiting person whose quantity fits is offered them (someone
//! further back who asked for fewer may go first when the first asks for more than came back), so
//! returned seats never sit idle behind a large request. An offered entry leaves the list.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

pub use crate::domain::ListStatus;

/// One person's entry as they see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListView {
    /// Waiting people ahead plus one; `None` once offered.
    pub position: Option<u64>,
    pub status: ListStatus,
    pub quantity: u32,
}

/// A waiting entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub entry_id: Uuid,
    pub user_id: Uuid,
    pub quantity: u32,
    pub seq: i64,
}

#[derive(Debug, Default)]
pub struct Waitlist {
    /// Waiting entries by `seq` (the order they asked in).
    waiting: BTreeMap<i64, Listed>,
    /// Each person's latest entry and its status.
    latest: HashMap<Uuid, (Listed, ListStatus)>,
    last_seq: i64,
}

/// The outcome of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    Existing(ListView),
    New(Listed, ListView),
}

impl Waitlist {
    /// The list as stored, entries in `seq` order with their status.
    pub fn restore(entries: impl IntoIterator<Item = (Listed, ListStatus)>) -> Self {
        let mut w = Self::default();
        for (entry, status) in entries {
            if status == ListStatus::Waiting {
                w.waiting.insert(entry.seq, entry);
            }
            w.latest.insert(entry.user_id, (entry, status));
            w.last_seq = w.last_seq.max(entry.seq);
        }
        w
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// `user`'s latest entry, unless they left it.
    pub fn view(&self, user: Uuid) -> Option<ListView> {
        let (entry, status) = self.latest.get(&user)?;
        let position = match status {
            ListStatus::Waiting => Some(self.waiting.range(..entry.seq).count() as u64 + 1),
            ListStatus::Offered => None,
            ListStatus::Left => return None,
        };
        Some(ListView { position, status: *status, quantity: entry.quantity })
    }

    /// One waiting entry per person: the same one again, else a new one at the back.
    pub fn join(&mut self, user_id: Uuid, entry_id: Uuid, quantity: u32) -> Join {
        if let Some(v) = self.view(user_id)
            && v.status == ListStatus::Waiting
        {
            return Join::Existing(v);
        }
        self.last_seq += 1;
        let entry = Listed { entry_id, user_id, quantity, seq: self.last_seq };
        self.waiting.insert(entry.seq, entry);
        self.latest.insert(user_id, (entry, ListStatus::Waiting));
        Join::New(entry, self.view(user_id).expect("just joined"))
    }

    /// Takes `user` off the list; their entry, if they were waiting.
    pub fn leave(&mut self, user: Uuid) -> Option<Listed> {
        let (entry, status) = self.latest.get_mut(&user)?;
        if *status != ListStatus::Waiting {
            return None;
        }
        *status = ListStatus::Left;
        self.waiting.remove(&entry.seq)
    }

    /// The first waiting entry that `fits`, taken off the list as offered.
    pub fn offer(&mut self, fits: impl Fn(&Listed) -> bool) -> Option<Listed> {
        let seq = self.waiting.values().find(|e| fits(e))?.seq;
        let entry = self.waiting.remove(&seq)?;
        if let Some((_, status)) = self.latest.get_mut(&entry.user_id) {
            *status = ListStatus::Offered;
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_the_order_asked_in_and_leaving_moves_the_rest_up() {
        let mut w = Waitlist::default();
        let p: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for (i, u) in p.iter().enumerate() {
            let Join::New(e, v) = w.join(*u, Uuid::now_v7(), 2) else { panic!("new") };
            assert_eq!((e.seq, v.position), (i as i64 + 1, Some(i as u64 + 1)));
        }
        assert!(matches!(w.join(p[1], Uuid::now_v7(), 2), Join::Existing(v) if v.position == Some(2)));
        assert!(w.leave(p[0]).is_some());
        assert!(w.view(p[0]).is_none(), "left");
        assert!(w.leave(p[0]).is_none(), "not listed any more");
        assert_eq!(w.view(p[2]).unwrap().position, Some(2));
    }

    #[test]
    fn returned_seats_go_to_the_first_person_they_fit() {
        let mut w = Waitlist::default();
        let (big, small, later) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        w.join(big, Uuid::now_v7(), 4);
        w.join(small, Uuid::now_v7(), 1);
        w.join(later, Uuid::now_v7(), 1);
        let offered = w.offer(|e| e.quantity <= 2).unwrap();
        assert_eq!(offered.user_id, small, "the first one two seats fit");
        assert_eq!(w.view(small).unwrap(), ListView { position: None, status: ListStatus::Offered, quantity: 1 });
        assert_eq!(w.view(later).unwrap().position, Some(2));
        assert_eq!(w.offer(|e| e.quantity <= 4).unwrap().user_id, big);
        // An offered person may ask again: a new entry at the back.
        assert!(matches!(w.join(small, Uuid::now_v7(), 1), Join::New(e, v) if e.seq == 4 && v.position == Some(2)));
    }

    #[test]
    fn a_restored_list_keeps_its_order_and_offers() {
        let e = |seq, quantity| Listed { entry_id: Uuid::now_v7(), user_id: Uuid::now_v7(), quantity, seq };
        let (a, b, c) = (e(1, 1), e(2, 1), e(3, 2));
        let w = Waitlist::restore([(a, ListStatus::Offered), (b, ListStatus::Waiting), (c, ListStatus::Waiting)]);
        assert_eq!(w.view(a.user_id).unwrap().status, ListStatus::Offered);
        assert_eq!(w.view(c.user_id).unwrap().position, Some(2));
        assert_eq!(w.len(), 2);
    }
}
