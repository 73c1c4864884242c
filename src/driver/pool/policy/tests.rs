//! The policy on its own: sequences of events, no kernel.

use super::*;
use proptest::prelude::*;

/// A dry moment that counts: a receive was booked, then the ring ran dry.
fn dry_moment(p: &mut Policy) -> Growth {
    p.booked();
    p.dry()
}

/// A policy of `initial` buffers grown once to twice that.
fn grown(initial: usize, max: usize) -> Policy {
    let mut p = Policy::new(initial, max);
    assert_eq!(dry_moment(&mut p), Growth::Keep);
    assert_eq!(dry_moment(&mut p), Growth::Grow(initial));
    p
}

#[test]
fn starts_at_initial() {
    assert_eq!(Policy::new(4, 64).live(), 4);
}

#[test]
fn grows_after_two_dry_moments_not_one() {
    let mut p = Policy::new(4, 64);
    assert_eq!(dry_moment(&mut p), Growth::Keep, "one moment grew it");
    assert_eq!(p.live(), 4);
    assert_eq!(dry_moment(&mut p), Growth::Grow(4), "doubles");
    assert_eq!(p.live(), 8);
    // The count starts over after a growth.
    assert_eq!(dry_moment(&mut p), Growth::Keep);
    assert_eq!(dry_moment(&mut p), Growth::Grow(8));
    assert_eq!(p.live(), 16);
}

#[test]
fn a_dry_ring_before_any_receive_is_no_moment() {
    let mut p = Policy::new(4, 64);
    assert_eq!(p.dry(), Growth::Keep);
    assert_eq!(dry_moment(&mut p), Growth::Keep, "the first dry counted");
    assert_eq!(dry_moment(&mut p), Growth::Grow(4));
}

#[test]
fn one_moment_however_many_readers_meet_it() {
    let mut p = Policy::new(4, 1024);
    for round in 0..3 {
        p.booked();
        // 64 readers meet the same dry ring before any receive is booked.
        let grew = (0..64).filter(|_| p.dry() != Growth::Keep).count();
        assert_eq!(grew, usize::from(round == 1), "round {round}");
    }
    assert_eq!(p.live(), 8, "grew once in three moments");
}

#[test]
fn never_past_max() {
    let mut p = Policy::new(3, 10);
    let mut grown = Vec::new();
    for _ in 0..20 {
        if let Growth::Grow(n) = dry_moment(&mut p) {
            grown.push(n);
        }
    }
    assert_eq!(grown, [3, 4], "3 -> 6 -> 10 (capped), then no more");
    assert_eq!(p.live(), 10);
}

#[test]
fn initial_equal_to_max_never_grows() {
    let mut p = Policy::new(5, 5);
    for _ in 0..10 {
        assert_eq!(dry_moment(&mut p), Growth::Keep);
    }
    assert_eq!(p.live(), 5);
}

#[test]
fn shrinks_only_after_eight_times_its_size_in_calm_returns() {
    let mut p = grown(4, 64);
    for i in 1..8 * 8 {
        assert_eq!(p.returned(8), Return::Keep, "retired after {i} returns");
    }
    assert_eq!(p.returned(8), Return::Retire);
    assert_eq!(p.live(), 7);
}

#[test]
fn a_dry_moment_restarts_the_calm_count() {
    let mut p = grown(4, 64);
    for _ in 0..8 * 8 - 1 {
        assert_eq!(p.returned(8), Return::Keep);
    }
    // Running dry, even without a counted moment, resets the count.
    assert_eq!(p.dry(), Growth::Keep);
    for _ in 0..8 * 8 - 1 {
        assert_eq!(p.returned(8), Return::Keep);
    }
    assert_eq!(p.returned(8), Return::Retire);
}

#[test]
fn shrinks_only_while_half_the_pool_is_free() {
    let mut p = grown(4, 64);
    for _ in 0..1000 {
        assert_eq!(p.returned(3), Return::Keep, "3 of 8 free");
    }
    assert_eq!(p.returned(4), Return::Retire, "4 of 8 free");
}

#[test]
fn once_calm_each_return_retires_down_to_initial() {
    let mut p = grown(4, 64);
    for _ in 0..8 * 8 - 1 {
        p.returned(8);
    }
    let retired = (0..100).filter(|_| p.returned(8) == Return::Retire).count();
    assert_eq!(retired, 4, "8 -> 4");
    assert_eq!(p.live(), 4, "never below initial");
}

#[test]
fn steady_state_neither_grows_nor_shrinks() {
    // At its initial size with everything free: returns never retire.
    let mut p = Policy::new(4, 64);
    for _ in 0..10_000 {
        assert_eq!(p.returned(4), Return::Keep);
    }
    // Grown for a load that stays: half of it out, no dry moment.
    let mut p = grown(4, 64);
    for _ in 0..10_000 {
        p.booked();
        assert_eq!(p.returned(3), Return::Keep);
    }
    assert_eq!(p.live(), 8);
    // Grown, then a dry moment now and then: one moment alone never grows
    // it, and the calm count never reaches 8 x its size.
    let mut p = grown(4, 64);
    for _ in 0..100 {
        for _ in 0..8 * 8 - 1 {
            assert_eq!(p.returned(8), Return::Keep);
        }
        assert_eq!(p.dry(), Growth::Keep, "no receive booked: no moment");
    }
    assert_eq!(p.live(), 8);
}

#[test]
fn closed_never_grows_but_still_shrinks() {
    let mut p = grown(4, 64);
    p.close();
    for _ in 0..10 {
        assert_eq!(dry_moment(&mut p), Growth::Keep);
    }
    for _ in 0..8 * 8 - 1 {
        p.returned(8);
    }
    assert_eq!(p.returned(8), Return::Retire);
    assert_eq!(p.live(), 7);
    for _ in 0..10 {
        assert_eq!(dry_moment(&mut p), Growth::Keep, "grew after close");
    }
}

/// One thing that happens to a pool.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A receive brought bytes.
    Booked,
    /// A receive met a dry ring.
    Dry,
    /// Buffers came back, this many in a row, each while this share (of
    /// 255) of the pool was free.
    Returned(u8, u16),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => Just(Event::Booked),
        3 => Just(Event::Dry),
        3 => (any::<u8>(), 1u16..400).prop_map(|(s, n)| Event::Returned(s, n)),
    ]
}

/// The rules as `Pool` wrote them inline before the policy was a type of
/// its own (a receive counter instead of a flag, `live` beside them).
#[derive(Debug, Default)]
struct Inline {
    initial: usize,
    max: usize,
    live: usize,
    receives: u64,
    receives_at_dry: u64,
    dry_since_growth: usize,
    returns_since_dry: usize,
    closed: bool,
}

impl Inline {
    fn exhausted(&mut self) -> Growth {
        if self.receives != self.receives_at_dry {
            self.receives_at_dry = self.receives;
            self.dry_since_growth += 1;
        }
        self.returns_since_dry = 0;
        let len = self.live;
        if self.dry_since_growth >= 2 && len < self.max && !self.closed {
            self.dry_since_growth = 0;
            self.live = (len * 2).min(self.max);
            return Growth::Grow(self.live - len);
        }
        Growth::Keep
    }

    fn give_back(&mut self, free: usize) -> Return {
        self.returns_since_dry += 1;
        let calm = self.returns_since_dry >= 8 * self.live;
        if calm && self.live > self.initial && free * 2 >= self.live {
            self.live -= 1;
            return Return::Retire;
        }
        Return::Keep
    }
}

proptest! {
    /// Whatever happens, the pool stays within its bounds, grows at most
    /// by doubling, shrinks one buffer at a time, never grows once closed,
    /// and decides exactly as the inline rules it replaced.
    #[test]
    fn random_events_keep_initial_le_live_le_max(
        initial in 1usize..16,
        extra in 0usize..200,
        events in prop::collection::vec(event(), 0..300),
        close_at in prop::option::of(0usize..300),
    ) {
        let max = initial + extra;
        let mut p = Policy::new(initial, max);
        let mut old = Inline { initial, max, live: initial, ..Inline::default() };
        for (i, e) in events.into_iter().enumerate() {
            if close_at == Some(i) {
                p.close();
                old.closed = true;
            }
            let before = p.live();
            match e {
                Event::Booked => {
                    p.booked();
                    old.receives += 1;
                }
                Event::Dry => {
                    let growth = p.dry();
                    prop_assert_eq!(growth, old.exhausted());
                    match growth {
                        Growth::Grow(n) => {
                            prop_assert!(!old.closed, "grew after close");
                            prop_assert!(n > 0 && n <= before, "+{} on {}", n, before);
                            prop_assert_eq!(p.live(), before + n);
                        }
                        Growth::Keep => prop_assert_eq!(p.live(), before),
                    }
                }
                Event::Returned(share, times) => {
                    for _ in 0..times {
                        let before = p.live();
                        let free = before * usize::from(share) / 255;
                        let decision = p.returned(free);
                        prop_assert_eq!(decision, old.give_back(free));
                        match decision {
                            Return::Retire => prop_assert_eq!(p.live() + 1, before),
                            Return::Keep => prop_assert_eq!(p.live(), before),
                        }
                    }
                }
            }
            prop_assert_eq!(p.live(), old.live);
            prop_assert!(initial <= p.live() && p.live() <= max, "{:?}", p);
        }
    }
}
