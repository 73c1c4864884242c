//! What the running kernel supports, probed once when the driver starts.

use io_uring::{IoUring, Probe as RawProbe, opcode};

/// Kernel support found when the runtime started. Later features read it
/// here instead of guessing from version numbers.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Probe {
    /// `IORING_REGISTER_PROBE` answered; the opcode flags below are exact.
    pub probed: bool,
    /// Kernel version from `uname`, as `(major, minor)`.
    pub kernel: (u32, u32),
    /// Completions are never dropped on overflow (`IORING_FEAT_NODROP`, 5.5).
    pub nodrop: bool,
    /// `io_uring_enter` takes a timeout (`IORING_FEAT_EXT_ARG`, 5.11).
    pub ext_arg: bool,
    /// The ring runs with deferred task work (`IORING_SETUP_DEFER_TASKRUN`, 6.1).
    pub defer_taskrun: bool,
    /// Opcodes the crate uses are all there.
    pub read: bool,
    /// `IORING_OP_WRITE`.
    pub write: bool,
    /// `IORING_OP_RECV`.
    pub recv: bool,
    /// `IORING_OP_SEND`.
    pub send: bool,
    /// `IORING_OP_WRITEV`.
    pub writev: bool,
    /// `IORING_OP_ACCEPT`.
    pub accept: bool,
    /// `IORING_OP_CONNECT`.
    pub connect: bool,
    /// `IORING_OP_OPENAT`.
    pub openat: bool,
    /// `IORING_OP_CLOSE`.
    pub close: bool,
    /// `IORING_OP_SHUTDOWN`.
    pub shutdown: bool,
    /// `IORING_OP_TIMEOUT`.
    pub timeout: bool,
    /// `IORING_OP_ASYNC_CANCEL`.
    pub async_cancel: bool,
    /// Provided buffer rings register (`IORING_REGISTER_PBUF_RING`, 5.19).
    pub buf_ring: bool,
    /// Multishot accept (5.19).
    pub multishot_accept: bool,
    /// Multishot receive (6.0).
    pub multishot_recv: bool,
    /// Receive bundles (`IORING_FEAT_RECVSEND_BUNDLE`, 6.10).
    pub recv_bundle: bool,
    /// Incrementally consumed buffer rings (`IOU_PBUF_RING_INC`, 6.12).
    pub buf_ring_inc: bool,
}

impl Probe {
    /// No io_uring: only the kernel version (the epoll backend).
    pub(super) fn kernel_only() -> Probe {
        Probe {
            kernel: kernel_version(),
            ..Probe::default()
        }
    }

    /// Probes `ring`.
    pub(super) fn detect(ring: &IoUring, defer_taskrun: bool) -> Probe {
        let params = ring.params();
        let mut raw = RawProbe::new();
        let probed = ring.submitter().register_probe(&mut raw).is_ok();
        let has = |code: u8| probed && raw.is_supported(code);
        let kernel = kernel_version();
        let at_least = |v: (u32, u32)| kernel >= v;
        let buf_ring = probe_buf_ring(ring, 0);
        Probe {
            probed,
            kernel,
            nodrop: params.is_feature_nodrop(),
            ext_arg: params.is_feature_ext_arg(),
            defer_taskrun,
            read: has(opcode::Read::CODE),
            write: has(opcode::Write::CODE),
            recv: has(opcode::Recv::CODE),
            send: has(opcode::Send::CODE),
            writev: has(opcode::Writev::CODE),
            accept: has(opcode::Accept::CODE),
            connect: has(opcode::Connect::CODE),
            openat: has(opcode::OpenAt::CODE),
            close: has(opcode::Close::CODE),
            shutdown: has(opcode::Shutdown::CODE),
            timeout: has(opcode::Timeout::CODE),
            async_cancel: has(opcode::AsyncCancel::CODE),
            buf_ring,
            multishot_accept: has(opcode::Accept::CODE) && at_least((5, 19)),
            multishot_recv: buf_ring && at_least((6, 0)),
            recv_bundle: params.is_feature_recvsend_bundle(),
            buf_ring_inc: buf_ring
                && probe_buf_ring(ring, io_uring::types::IOU_PBUF_RING_INC as u16),
        }
    }
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

/// Whether receives may ask to wait for readiness first
/// (`IORING_RECVSEND_POLL_FIRST`, Linux 5.19); read once per process.
pub(crate) fn recv_poll_first() -> bool {
    static POLL_FIRST: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *POLL_FIRST.get_or_init(|| kernel_version() >= (5, 19))
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
