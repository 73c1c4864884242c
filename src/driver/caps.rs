//! What the kernel behind a runtime can do, asked of the driver by name.
//!
//! Layers above the driver never name a backend: they ask
//! [`Driver::has`](super::Driver::has) for a [`Cap`]. Each answer is decided
//! once per runtime, when its backend starts.

/// One kernel capability the layers above the driver may depend on.
// Variants not asked for yet are the capabilities the redesign moves here.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Cap {
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
}
