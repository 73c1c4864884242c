//! What the running kernel supports, probed once when an io_uring backend
//! starts: the operations the crate cannot do without, and the
//! capabilities ([`Caps`]) that layers above the driver may ask for.
//! Every capability is decided here, in [`decide`]; those the opcode probe
//! cannot see (multishot accept and receive, `POLL_FIRST`, receive byte
//! limits) by the kernel version, buffer rings by a trial registration.

use std::io;

use io_uring::{IoUring, Probe as RawProbe, opcode};

use super::caps::{Cap, Caps};

/// The opcodes every source and the buffered layer rely on, by name: a
/// ring without one of them is refused (the runtime falls back to epoll).
const REQUIRED: [(u8, &str); 12] = [
    (opcode::Read::CODE, "READ"),
    (opcode::Write::CODE, "WRITE"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::Writev::CODE, "WRITEV"),
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::OpenAt::CODE, "OPENAT"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::Shutdown::CODE, "SHUTDOWN"),
    (opcode::Timeout::CODE, "TIMEOUT"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
];

/// What the backend keeps of the probe.
#[derive(Clone, Copy, Debug)]
pub(super) struct Probe {
    /// `io_uring_enter` takes a timeout (`IORING_FEAT_EXT_ARG`, 5.11).
    pub(super) ext_arg: bool,
    /// The capabilities of this ring.
    pub(super) caps: Caps,
}

impl Probe {
    /// Probes `ring`, set up with deferred task-run if `defer_taskrun`.
    /// Fails, naming them, if operations the crate needs are missing.
    pub(super) fn detect(ring: &IoUring, defer_taskrun: bool) -> io::Result<Probe> {
        let mut raw = RawProbe::new();
        let probed = ring.submitter().register_probe(&mut raw).is_ok();
        let missing: Vec<&str> = REQUIRED
            .iter()
            .filter(|(code, _)| !(probed && raw.is_supported(*code)))
            .map(|(_, name)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "io_uring lacks operations this crate needs: {}",
                    missing.join(", ")
                ),
            ));
        }
        let params = ring.params();
        let found = Found {
            kernel: kernel_version(),
            defer_taskrun,
            buf_ring: probe_buf_ring(ring, 0),
            buf_ring_inc: probe_buf_ring(ring, io_uring::types::IOU_PBUF_RING_INC as u16),
            recv_bundle: params.is_feature_recvsend_bundle(),
        };
        Ok(Probe {
            ext_arg: params.is_feature_ext_arg(),
            caps: decide(found),
        })
    }
}

/// What probing found, before it is turned into capabilities.
#[derive(Clone, Copy, Debug)]
struct Found {
    /// Kernel version from `uname`, as `(major, minor)`.
    kernel: (u32, u32),
    /// The ring was set up with `IORING_SETUP_DEFER_TASKRUN`.
    defer_taskrun: bool,
    /// A provided buffer ring could be registered.
    buf_ring: bool,
    /// One with `IOU_PBUF_RING_INC` could be registered.
    buf_ring_inc: bool,
    /// The ring reports `IORING_FEAT_RECVSEND_BUNDLE`.
    recv_bundle: bool,
}

/// The one place capabilities are decided. The required opcodes (accept
/// and receive among them) are known present here.
fn decide(f: Found) -> Caps {
    let since = |v: (u32, u32)| f.kernel >= v;
    Caps::NONE
        .with(Cap::BufRing, f.buf_ring)
        .with(Cap::MultishotRecv, f.buf_ring && since((6, 0)))
        .with(Cap::RecvLimit, f.buf_ring && since((6, 17)))
        .with(Cap::RecvBundle, f.buf_ring && f.recv_bundle)
        .with(Cap::BufRingInc, f.buf_ring && f.buf_ring_inc)
        .with(Cap::MultishotAccept, since((5, 19)))
        .with(Cap::DeferTaskrun, f.defer_taskrun)
        .with(Cap::PollFirst, since((5, 19)))
        .with(Cap::SendZc, since((6, 0)))
}

/// Tries to register (and at once unregister) a one-entry provided buffer
/// ring with `flags`, in memory we allocate.
fn probe_buf_ring(ring: &IoUring, flags: u16) -> bool {
    const BGID: u16 = u16::MAX;
    // SAFETY: an anonymous private mapping of one page; checked below.
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return false;
    }
    // SAFETY: `mem` is a page-aligned, zeroed page that stays mapped until
    // after the ring is unregistered below.
    let ok = unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(mem as u64, 1, BGID, flags)
    }
    .is_ok();
    if ok {
        let _ = ring.submitter().unregister_buf_ring(BGID);
    }
    // SAFETY: mapped above and no longer registered with the kernel.
    unsafe { libc::munmap(mem, 4096) };
    ok
}

/// `(major, minor)` of the running kernel, `(0, 0)` if unreadable.
fn kernel_version() -> (u32, u32) {
    // SAFETY: utsname is plain data; uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (0, 0);
    }
    let release: String = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a kernel of `version` with every trial succeeding reports.
    fn found(kernel: (u32, u32)) -> Found {
        Found {
            kernel,
            defer_taskrun: true,
            buf_ring: true,
            buf_ring_inc: true,
            recv_bundle: true,
        }
    }

    #[test]
    fn version_gated_capabilities_follow_the_kernel() {
        let old = decide(found((5, 18)));
        assert!(!old.has(Cap::MultishotAccept) && !old.has(Cap::PollFirst));
        assert!(!old.has(Cap::MultishotRecv) && !old.has(Cap::RecvLimit));
        let mid = decide(found((6, 16)));
        assert!(mid.has(Cap::MultishotAccept) && mid.has(Cap::PollFirst));
        assert!(mid.has(Cap::MultishotRecv) && !mid.has(Cap::RecvLimit));
        assert_eq!(decide(found((6, 17))), Caps::ALL);
        assert_eq!(decide(found((7, 0))), Caps::ALL);
    }

    #[test]
    fn buffer_capabilities_need_a_buffer_ring() {
        let caps = decide(Found {
            buf_ring: false,
            ..found((6, 18))
        });
        for cap in [
            Cap::BufRing,
            Cap::MultishotRecv,
            Cap::RecvLimit,
            Cap::RecvBundle,
            Cap::BufRingInc,
        ] {
            assert!(!caps.has(cap), "{cap}");
        }
        assert!(caps.has(Cap::MultishotAccept) && caps.has(Cap::DeferTaskrun));
        let no_defer = decide(Found {
            defer_taskrun: false,
            ..found((6, 18))
        });
        assert_eq!(
            no_defer,
            Caps::ALL.without(Caps::NONE.with(Cap::DeferTaskrun, true))
        );
    }

    #[test]
    fn this_kernel_has_every_capability() {
        let ring = IoUring::new(8).expect("io_uring");
        let probe = Probe::detect(&ring, true).expect("all required operations");
        // The project's kernel (6.18) has them all; DeferTaskrun is as told.
        assert_eq!(probe.caps, Caps::ALL, "kernel {:?}", kernel_version());
    }
}
