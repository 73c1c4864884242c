//! How a pool is sized, and what it counts.

/// How the runtime's buffer pool is sized; see [`Builder::pool`](crate::Builder::pool).
///
/// A builder: setters only, as tokio's `Builder`; what is in effect shows
/// in [`Runtime::pool_stats`](crate::Runtime::pool_stats).
///
/// ```
/// use uring_bufio::PoolConfig;
/// let config = PoolConfig::new().buffer_size(4096).buffers(256).max_buffers(1024).per_reader(4);
/// // The maximum is never below the initial count.
/// assert_eq!(config.max_buffers(16), config.max_buffers(256));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Bytes per buffer: `1 <= size <= 1 GiB`.
    pub(super) size: usize,
    /// Buffers allocated when the pool is first used, and the least it
    /// shrinks to: `1 <= initial <= max`.
    pub(super) initial: usize,
    /// The pool grows (doubling) up to this many buffers when it runs dry:
    /// `initial <= max <= MAX_BUFFERS`.
    pub(super) max: usize,
    /// Buffers one reader may hold before its receive is paused: `>= 1`.
    pub(super) per_reader: usize,
    /// Use incrementally consumed buffers where the kernel has them.
    pub(super) incremental: bool,
    /// Use receive bundles where the kernel has them.
    pub(super) bundles: bool,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            size: 16 * 1024,
            initial: 64,
            max: 4096,
            per_reader: 8,
            incremental: true,
            bundles: true,
        }
    }
}

impl PoolConfig {
    /// 64 buffers of 16 KiB, growing to 4096 (64 MiB), 8 per reader.
    pub fn new() -> PoolConfig {
        PoolConfig::default()
    }

    /// Bytes per buffer (at least 1, at most 1 GiB). Default 16 KiB.
    pub fn buffer_size(mut self, size: usize) -> PoolConfig {
        self.size = size.clamp(1, 1 << 30);
        self
    }

    /// Buffers allocated when the pool is first used (at least 1, at most
    /// 16384). Default 64.
    pub fn buffers(mut self, n: usize) -> PoolConfig {
        self.initial = n.clamp(1, MAX_BUFFERS);
        self.max = self.max.max(self.initial);
        self
    }

    /// Most buffers the pool grows to when it runs dry (at most 16384, at
    /// least [`buffers`](PoolConfig::buffers)). Default 4096.
    pub fn max_buffers(mut self, n: usize) -> PoolConfig {
        self.max = n.clamp(self.initial, MAX_BUFFERS);
        self
    }

    /// Most buffers a single reader holds received and not yet consumed
    /// (at least 1), besides the one it lends from. Each multishot receive
    /// carries a byte limit of this many buffers (Linux 6.17; older kernels
    /// cancel a receive whose completions queue up past it), and the next
    /// is armed only when the caller needs more, so a connection that stops
    /// reading cannot take the whole pool: the data waits in the socket, as
    /// TCP flow control intends. Default 8.
    pub fn per_reader(mut self, n: usize) -> PoolConfig {
        self.per_reader = n.max(1);
        self
    }

    /// Lets the kernel fill one buffer from several receives, each taking
    /// only the bytes it got (`IOU_PBUF_RING_INC`, Linux 6.12), so a small
    /// message does not take a whole buffer. Used where the kernel has it;
    /// default on. Takes precedence over bundles.
    pub fn incremental(mut self, on: bool) -> PoolConfig {
        self.incremental = on;
        self
    }

    /// Lets one receive completion fill several buffers at once
    /// (`IORING_RECVSEND_BUNDLE`, Linux 6.10), fewer completions for bulk
    /// data. Used where the kernel has it and incremental buffers are not
    /// in use; default on.
    pub fn bundles(mut self, on: bool) -> PoolConfig {
        self.bundles = on;
        self
    }

    // Getters for the crate (the public API has setters only).

    /// Bytes per buffer.
    pub(crate) fn get_buffer_size(&self) -> usize {
        self.size
    }

    /// Whether incremental buffers are wanted.
    pub(crate) fn get_incremental(&self) -> bool {
        self.incremental
    }

    /// Whether receive bundles are wanted.
    pub(crate) fn get_bundles(&self) -> bool {
        self.bundles
    }

    /// Buffers allocated at first use.
    pub(crate) fn get_buffers(&self) -> usize {
        self.initial
    }

    /// Most buffers the pool grows to.
    pub(crate) fn get_max_buffers(&self) -> usize {
        self.max
    }

    /// Most buffers one reader holds.
    pub(crate) fn get_per_reader(&self) -> usize {
        self.per_reader
    }
}

/// A provided buffer ring has at most 2^15 entries.
pub(super) const MAX_RING: usize = 1 << 15;
/// A pool has at most half a ring of buffers: every buffer can be published
/// once more after a bundle's buffers were taken off the ring before that
/// bundle's completion is reaped (completions come in the order buffers are
/// taken), and its ring positions must not be published over by then.
pub(super) const MAX_BUFFERS: usize = MAX_RING / 2;

/// Counters of a runtime's buffer pool, from
/// [`Runtime::pool_stats`](crate::Runtime::pool_stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The kernel picks buffers from a registered ring (io_uring); `false`
    /// means a user-space list (epoll).
    pub kernel_ring: bool,
    /// The ring's buffers are consumed incrementally (`IOU_PBUF_RING_INC`).
    pub incremental: bool,
    /// Receives fill several buffers per completion (bundles).
    pub bundles: bool,
    /// Bytes per buffer.
    pub buffer_size: usize,
    /// Buffers the pool has.
    pub buffers: usize,
    /// Buffers free for the next receive.
    pub free: usize,
    /// Buffers holding received bytes (in readers or in completions not yet
    /// collected).
    pub out: usize,
    /// Times a receive found no free buffer (`ENOBUFS`).
    pub exhausted: u64,
    /// Times the pool grew.
    pub grown: u64,
    /// Most buffers the pool ever had.
    pub peak: usize,
    /// Buffers that left the pool as it shrank back after a burst: once
    /// it has not run dry for eight times its size in returned buffers, each
    /// buffer coming back while half the pool is free leaves it, down to
    /// its initial size.
    pub retired: u64,
    /// Buffers whose allocation stayed with a frame and was replaced.
    pub replaced: u64,
    /// Receive completions that brought bytes.
    pub receives: u64,
    /// Of those, completions that filled more than one buffer (bundles).
    pub bundled: u64,
    /// Of those, completions that left room in their buffer for later
    /// receives (incremental).
    pub partial: u64,
}
