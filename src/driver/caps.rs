//! What the kernel behind a runtime can do, asked of the driver by name.
//!
//! Layers above the driver never name a backend: they ask
//! [`Driver::has`](super::Driver::has) for a [`Cap`]. The answers are
//! decided once per runtime, when its backend starts (`probe::decide` for
//! io_uring; epoll has none), minus the capabilities the test switch
//! [`CAPS_OFF_ENV`] turns off, and kept as a [`Caps`] set that is cheap to
//! ask.

use std::fmt;
use std::io;

/// Environment variable that turns single capabilities off on a real
/// io_uring, as if the kernel lacked them: `buf_ring,multishot_accept`, or
/// `all`. For tests of the fallbacks older kernels take; an unknown name
/// makes the runtime fail to start.
pub const CAPS_OFF_ENV: &str = "URING_BUFIO_CAPS_OFF";

/// One kernel capability the crate depends on; ask a runtime with
/// [`Runtime::has`](crate::Runtime::has). Capabilities are of the io_uring
/// backend: on epoll none is present.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cap {
    /// Provided buffer rings the kernel picks receive buffers from (5.19).
    BufRing,
    /// One receive that completes many times (6.0; needs `BufRing`).
    MultishotRecv,
    /// A byte limit on a multishot receive (`IORING_RECV_MSHOT_LIM`, 6.17).
    RecvLimit,
    /// One receive completion filling several buffers (6.10).
    RecvBundle,
    /// Buffers consumed incrementally (`IOU_PBUF_RING_INC`, 6.12).
    BufRingInc,
    /// One accept that completes many times (5.19).
    MultishotAccept,
    /// Completions are processed only when the runtime enters (6.1).
    DeferTaskrun,
    /// A receive may wait for readiness before trying
    /// (`IORING_RECVSEND_POLL_FIRST`, 5.19).
    PollFirst,
    /// Zero-copy sends (`IORING_OP_SEND_ZC`, 6.0).
    SendZc,
}

impl Cap {
    /// Every capability with its name in [`CAPS_OFF_ENV`].
    pub(crate) const NAMED: [(Cap, &'static str); 9] = [
        (Cap::BufRing, "buf_ring"),
        (Cap::MultishotRecv, "multishot_recv"),
        (Cap::RecvLimit, "recv_limit"),
        (Cap::RecvBundle, "recv_bundle"),
        (Cap::BufRingInc, "buf_ring_inc"),
        (Cap::MultishotAccept, "multishot_accept"),
        (Cap::DeferTaskrun, "defer_taskrun"),
        (Cap::PollFirst, "poll_first"),
        (Cap::SendZc, "send_zc"),
    ];

    /// Its name in [`CAPS_OFF_ENV`].
    pub fn name(self) -> &'static str {
        Cap::NAMED[self as usize].1
    }

    /// Its bit in a [`Caps`] set.
    fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of capabilities, one bit per [`Cap`] (bit `cap as u16`).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Caps(u16);

impl Caps {
    /// No capability (epoll, or everything switched off).
    pub(crate) const NONE: Caps = Caps(0);

    /// Every capability.
    pub(crate) const ALL: Caps = Caps((1 << Cap::NAMED.len()) - 1);

    /// Whether `cap` is in the set.
    pub(crate) fn has(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    /// The set with `cap` added if `on`.
    pub(crate) fn with(self, cap: Cap, on: bool) -> Caps {
        if on { Caps(self.0 | cap.bit()) } else { self }
    }

    /// The set without the capabilities in `off`.
    pub(crate) fn without(self, off: Caps) -> Caps {
        Caps(self.0 & !off.0)
    }

    /// The capabilities named in a [`CAPS_OFF_ENV`] value: names separated
    /// by commas (spaces around them ignored), or `all`. An unknown name is
    /// an `InvalidInput` error that lists the known ones.
    pub(crate) fn parse(list: &str) -> io::Result<Caps> {
        let mut set = Caps::NONE;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "all" {
                set = Caps::ALL;
                continue;
            }
            match Cap::NAMED.iter().find(|(_, n)| *n == name) {
                Some(&(cap, _)) => set = set.with(cap, true),
                None => return Err(unknown_name(name)),
            }
        }
        Ok(set)
    }

    /// The capabilities [`CAPS_OFF_ENV`] switches off (none if unset).
    pub(crate) fn switched_off() -> io::Result<Caps> {
        match std::env::var(CAPS_OFF_ENV) {
            Ok(list) => Caps::parse(&list),
            Err(std::env::VarError::NotPresent) => Ok(Caps::NONE),
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{CAPS_OFF_ENV}: {e}"),
            )),
        }
    }
}

/// The error for a name [`Caps::parse`] does not know.
fn unknown_name(name: &str) -> io::Error {
    let known: Vec<&str> = Cap::NAMED.iter().map(|(_, n)| *n).collect();
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{CAPS_OFF_ENV}: unknown capability {name:?}; expected a comma-separated list of {} or \"all\"",
            known.join(", ")
        ),
    )
}

impl fmt::Debug for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = Cap::NAMED.iter().filter(|(c, _)| self.has(*c));
        f.debug_set().entries(on.map(|(_, n)| n)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_index_their_capability() {
        for (i, (cap, name)) in Cap::NAMED.iter().enumerate() {
            assert_eq!(*cap as usize, i, "{name}");
            assert_eq!(cap.name(), *name);
        }
    }

    #[test]
    fn parse_turns_off_exactly_the_named_ones() {
        let set = Caps::parse(" buf_ring, poll_first ,").unwrap();
        for (cap, _) in Cap::NAMED {
            let named = matches!(cap, Cap::BufRing | Cap::PollFirst);
            assert_eq!(set.has(cap), named, "{cap}");
        }
        assert_eq!(Caps::parse("").unwrap(), Caps::NONE);
        assert_eq!(Caps::parse("all").unwrap(), Caps::ALL);
        assert!(!Caps::ALL.without(set).has(Cap::BufRing));
        assert!(Caps::ALL.without(set).has(Cap::RecvLimit));
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        let err = Caps::parse("buf_ring,bufring").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(
            msg.contains("\"bufring\"") && msg.contains("multishot_accept"),
            "{msg}"
        );
    }
}
