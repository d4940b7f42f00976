//! The event's virtual waiting room, as its inventory keeps it: who waits, in join order, and who
//! is admitted until when. Plain bookkeeping; the actor writes it durably and runs its clock.
//!
//! Places are numbered in join order, densely from 1 per event (`seq`), and people are let
//! through strictly in that order, so the waiting people are always one unbroken run of numbers:
//! a waiting person's position is their number minus the first waiting one's, plus one, without
//! counting anybody.
//!
//! Admissions are paced by a budget that grows by `admit_per_second` per second of waiting and is
//! spent one person at a time. An idle room keeps at most one tick's worth (or one person), so a
//! rush that starts after a quiet spell is not let through in one burst.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How often the actor admits whoever is due.
pub const TICK: Duration = Duration::from_millis(100);

/// Where a person stands in an event's waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    Waiting,
    /// May book until `admitted_until`.
    Admitted,
    /// The admission ran out; joining again goes to the back.
    Expired,
}

/// One person's place as they see it (and, with `seq`, as a live stream follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueView {
    /// People ahead plus one while waiting; `None` once admitted.
    pub position: Option<u64>,
    pub status: QueueStatus,
    pub admitted_until: Option<DateTime<Utc>>,
    /// The place's number in join order.
    pub seq: i64,
}

/// A waiting place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub entry_id: Uuid,
    pub user_id: Uuid,
    pub seq: i64,
}

/// A person's latest place.
#[derive(Debug, Clone, Copy)]
struct Place {
    seq: i64,
    admitted_until: Option<DateTime<Utc>>,
}

/// The outcome of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// Already waiting or admitted: the same place.
    Existing(QueueView),
    /// A new place at the back, to be written.
    New(Waiting, QueueView),
}

#[derive(Debug, Default)]
pub struct Queue {
    waiting: VecDeque<Waiting>,
    /// Each person's latest place.
    latest: HashMap<Uuid, Place>,
    last_seq: i64,
    /// People owed admission (fractions carry over between ticks).
    budget: f64,
}

impl Queue {
    /// The room as stored: entries in `seq` order, `(entry, user, seq, admitted_until)`.
    pub fn restore(entries: impl IntoIterator<Item = (Uuid, Uuid, i64, Option<DateTime<Utc>>)>) -> Self {
        let mut q = Self::default();
        for (entry_id, user_id, seq, admitted_until) in entries {
            q.latest.insert(user_id, Place { seq, admitted_until });
            if admitted_until.is_none() {
                q.waiting.push_back(Waiting { entry_id, user_id, seq });
            }
            q.last_seq = q.last_seq.max(seq);
        }
        q
    }

    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// `user`'s place, if they ever joined.
    pub fn view(&self, user: Uuid, now: DateTime<Utc>) -> Option<QueueView> {
        let place = self.latest.get(&user)?;
        let (position, status) = match place.admitted_until {
            None => {
                let first = self.waiting.front().map_or(place.seq, |w| w.seq);
                (Some((place.seq - first + 1).max(1) as u64), QueueStatus::Waiting)
            }
            Some(until) if until > now => (None, QueueStatus::Admitted),
            Some(_) => (None, QueueStatus::Expired),
        };
        Some(QueueView { position, status, admitted_until: place.admitted_until, seq: place.seq })
    }

    pub fn is_admitted(&self, user: Uuid, now: DateTime<Utc>) -> bool {
        self.latest.get(&user).and_then(|p| p.admitted_until).is_some_and(|until| until > now)
    }

    /// One live place per person: the same one again while waiting or admitted, else a new one at
    /// the back.
    pub fn join(&mut self, user_id: Uuid, entry_id: Uuid, now: DateTime<Utc>) -> Join {
        if let Some(v) = self.view(user_id, now)
            && v.status != QueueStatus::Expired
        {
            return Join::Existing(v);
        }
        self.last_seq += 1;
        let place = Waiting { entry_id, user_id, seq: self.last_seq };
        self.waiting.push_back(place);
        self.latest.insert(user_id, Place { seq: place.seq, admitted_until: None });
        let view = self.view(user_id, now).expect("just joined");
        Join::New(place, view)
    }

    /// How many people are due after `elapsed` at `per_second`.
    pub fn due(&mut self, elapsed: Duration, per_second: u32) -> usize {
        let rate = f64::from(per_second.max(1));
        let idle_cap = (rate * TICK.as_secs_f64()).max(1.0);
        self.budget += rate * elapsed.as_secs_f64();
        if self.waiting.is_empty() {
            self.budget = self.budget.min(idle_cap);
            return 0;
        }
        let n = (self.budget.floor() as usize).min(self.waiting.len());
        self.budget -= n as f64;
        n
    }

    /// Lets the first `n` waiting people through until `until`.
    pub fn admit(&mut self, n: usize, until: DateTime<Utc>) -> Vec<Waiting> {
        let n = n.min(self.waiting.len());
        let through: Vec<Waiting> = self.waiting.drain(..n).collect();
        for w in &through {
            if let Some(p) = self.latest.get_mut(&w.user_id) {
                p.admitted_until = Some(until);
            }
        }
        through
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::now_v7()).collect()
    }

    #[test]
    fn positions_count_down_in_join_order_and_a_second_join_is_the_same_place() {
        let now = Utc::now();
        let mut q = Queue::default();
        let p = people(4);
        for (i, u) in p.iter().enumerate() {
            let Join::New(w, v) = q.join(*u, Uuid::now_v7(), now) else { panic!("a new place") };
            assert_eq!((w.seq, v.position, v.status), (i as i64 + 1, Some(i as u64 + 1), QueueStatus::Waiting));
        }
        assert!(matches!(q.join(p[2], Uuid::now_v7(), now), Join::Existing(v) if v.position == Some(3)));
        let through = q.admit(2, now + chrono::Duration::seconds(60));
        assert_eq!(through.iter().map(|w| w.user_id).collect::<Vec<_>>(), p[..2]);
        assert_eq!(q.view(p[0], now).unwrap().status, QueueStatus::Admitted);
        assert!(q.is_admitted(p[1], now));
        assert_eq!(q.view(p[2], now).unwrap().position, Some(1));
        assert_eq!(q.view(p[3], now).unwrap().position, Some(2));
        assert!(q.view(Uuid::now_v7(), now).is_none());
    }

    #[test]
    fn an_expired_admission_rejoins_at_the_back() {
        let now = Utc::now();
        let mut q = Queue::default();
        let p = people(3);
        for u in &p {
            q.join(*u, Uuid::now_v7(), now);
        }
        q.admit(1, now + chrono::Duration::seconds(1));
        let later = now + chrono::Duration::seconds(2);
        assert_eq!(q.view(p[0], later).unwrap().status, QueueStatus::Expired);
        assert!(!q.is_admitted(p[0], later));
        let Join::New(w, v) = q.join(p[0], Uuid::now_v7(), later) else { panic!("a new place") };
        assert_eq!((w.seq, v.position), (4, Some(3)));
    }

    #[test]
    fn admissions_follow_the_rate_and_an_idle_room_saves_no_burst() {
        let now = Utc::now();
        let mut q = Queue::default();
        // Ten quiet seconds at 5 per second bank one tick's worth at most (here: one person).
        assert_eq!(q.due(Duration::from_secs(10), 5), 0);
        for u in people(20) {
            q.join(u, Uuid::now_v7(), now);
        }
        let mut admitted = 0;
        for _ in 0..20 {
            admitted += q.due(TICK, 5);
        }
        // Two seconds at 5 per second, plus the one banked.
        assert_eq!(admitted, 11);
    }

    #[test]
    fn a_restored_room_keeps_its_order_and_admissions() {
        let now = Utc::now();
        let p = people(4);
        let until = now + chrono::Duration::seconds(60);
        let rows = vec![
            (Uuid::now_v7(), p[0], 1, Some(until)),
            (Uuid::now_v7(), p[1], 2, None),
            (Uuid::now_v7(), p[2], 3, None),
            (Uuid::now_v7(), p[3], 4, None),
        ];
        let mut q = Queue::restore(rows);
        assert!(q.is_admitted(p[0], now));
        assert_eq!(q.view(p[3], now).unwrap().position, Some(3));
        let Join::New(w, _) = q.join(Uuid::now_v7(), Uuid::now_v7(), now) else { panic!() };
        assert_eq!(w.seq, 5);
        assert_eq!(q.admit(1, until)[0].user_id, p[1]);
    }
}
