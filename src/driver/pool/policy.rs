//! When the pool grows and when it shrinks: plain counters and decisions,
//! no buffers, no kernel. The pool (`mod.rs`) tells the policy what
//! happened (a receive was booked, the ring ran dry, a buffer came back)
//! and does what the answer says.
//!
//! ```text
//!   ENOBUFS ──► dry moment? ──(2 since growth)──► Grow: live doubles (≤ max)
//!                    │
//!                    └── resets the calm count
//!   buffer back ──► calm count + 1 ──(≥ 8 × live, live > initial,
//!                                      half the pool free)──► Retire one
//! ```

/// What to do when a receive met a dry ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Growth {
    /// Add this many fresh buffers (the policy already counts them live).
    Grow(usize),
    /// Add none: the receive waits for a buffer to come back.
    Keep,
}

/// What to do with a buffer a reader gave back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Return {
    /// It leaves the pool (the policy no longer counts it live).
    Retire,
    /// It is published again.
    Keep,
}

/// The pool's growth and shrinking rules over plain counters.
///
/// Growth: every reader of a busy runtime meets a dry ring at the same
/// moment, so one moment counts once, not once per reader: a dry moment
/// counts only if some receive was booked since the last one (bookings
/// happen as completions are reaped, between moments). Two dry moments
/// since the pool last grew double it, up to `max`.
///
/// Shrinking: once the pool has not run dry for eight times its size in
/// returned buffers, each buffer coming back while half the pool is free
/// leaves it, down to `initial`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Policy {
    /// Buffers the pool starts with and never shrinks below; `1 <= initial`.
    initial: usize,
    /// Most buffers the pool grows to: `initial <= max`.
    max: usize,
    /// Buffers in the pool (free or lent): `initial <= live <= max`.
    live: usize,
    /// Dry moments counted since the pool last grew (or started). Reset by
    /// each growth, so it passes 1 only while the pool cannot grow (at
    /// `max`, or closed).
    dry_since_growth: usize,
    /// A receive was booked since the last counted dry moment (or since
    /// the start): the next dry moment counts.
    booked_since_dry: bool,
    /// Buffers given back since the last dry moment (counted or not).
    returns_since_dry: usize,
    /// The pool is open: `false` once closed, and then it never grows.
    open: bool,
}

impl Policy {
    /// A pool of `initial` buffers that may grow to `max`
    /// (`1 <= initial <= max`, as `PoolConfig` guarantees).
    pub(super) fn new(initial: usize, max: usize) -> Policy {
        debug_assert!(1 <= initial && initial <= max, "{initial} > {max}");
        Policy {
            initial,
            max,
            live: initial,
            dry_since_growth: 0,
            booked_since_dry: false,
            returns_since_dry: 0,
            open: true,
        }
    }

    /// Buffers in the pool.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// A receive completion brought bytes in pool buffers.
    pub(super) fn booked(&mut self) {
        self.booked_since_dry = true;
    }

    /// A receive found no free buffer (`ENOBUFS`).
    pub(super) fn dry(&mut self) -> Growth {
        if self.booked_since_dry {
            self.booked_since_dry = false;
            self.dry_since_growth += 1;
        }
        self.returns_since_dry = 0;
        if self.dry_since_growth < 2 || self.live >= self.max || !self.open {
            return Growth::Keep;
        }
        self.dry_since_growth = 0;
        let target = (self.live * 2).min(self.max);
        let added = target - self.live;
        self.live = target;
        Growth::Grow(added)
    }

    /// A lent buffer came back while `free` buffers are free (not counting
    /// it).
    pub(super) fn returned(&mut self, free: usize) -> Return {
        self.returns_since_dry += 1;
        let calm = self.returns_since_dry >= 8 * self.live;
        if calm && self.live > self.initial && free * 2 >= self.live {
            self.live -= 1;
            return Return::Retire;
        }
        Return::Keep
    }

    /// The pool closed: it never grows again (it may still shrink).
    pub(super) fn close(&mut self) {
        self.open = false;
    }
}

#[cfg(test)]
mod tests;
