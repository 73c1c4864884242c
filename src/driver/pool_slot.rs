//! The runtime's receive buffer pool as the driver holds it: built at the
//! first pooled read, in the mode the backend and its capabilities allow.

use std::rc::Rc;

use super::pool::{Mode as PoolMode, Pool, PoolConfig, PoolStats};
use super::{Cap, Driver, Inner, Kind};

/// The buffer group id of the runtime's pool.
pub(super) const POOL_GROUP: u16 = 0;

/// The runtime's receive buffer pool, or why there is none.
pub(super) enum PoolSlot {
    /// No pooled reader asked yet.
    NotBuilt,
    /// The kernel cannot pick buffers, or registering the ring failed:
    /// pooled readers read the ordinary way.
    Unavailable,
    /// Built, shared by every pooled reader of the runtime.
    Built(Rc<Pool>),
}

impl Driver {
    /// The runtime's receive buffer pool, built at the first call: a
    /// provided buffer ring on io_uring (where the kernel has them, with
    /// multishot receive), a user-space list on epoll. `None` where
    /// io_uring lacks them: pooled readers then read the ordinary way.
    pub(crate) fn pool(&self) -> Option<Rc<Pool>> {
        let mut inner = self.inner.borrow_mut();
        if let PoolSlot::NotBuilt = inner.pool {
            inner.pool = match self.build_pool(&mut inner) {
                Some(pool) => PoolSlot::Built(Rc::new(pool)),
                None => PoolSlot::Unavailable,
            };
        }
        match &inner.pool {
            PoolSlot::Built(pool) => Some(pool.clone()),
            PoolSlot::NotBuilt | PoolSlot::Unavailable => None,
        }
    }

    /// Builds the pool the backend and its capabilities allow, if any.
    fn build_pool(&self, inner: &mut Inner) -> Option<Pool> {
        let config = inner.pool_config;
        if inner.backend.kind() == Kind::Epoll {
            return Some(Pool::user(config));
        }
        let mode = self.kernel_pool_mode(&config)?;
        let flags = match mode {
            PoolMode::Incremental => io_uring::types::IOU_PBUF_RING_INC as u16,
            PoolMode::Bundles | PoolMode::Plain => 0,
        };
        let backend = &mut inner.backend;
        let pool = Pool::kernel(config, POOL_GROUP, mode, |addr, entries| {
            backend.register_buf_ring(addr, entries, POOL_GROUP, flags)
        })
        .ok()?;
        if !self.has(Cap::RecvLimit) {
            // Receives then never carry a byte limit; the cap rests on
            // cancelling a receive whose queue passes it.
            pool.refuse_limit();
        }
        Some(pool)
    }

    /// How a kernel pool would hand out buffers, or `None` if the kernel
    /// cannot pick buffers for multishot receives.
    fn kernel_pool_mode(&self, config: &PoolConfig) -> Option<PoolMode> {
        if !(self.has(Cap::BufRing) && self.has(Cap::MultishotRecv)) {
            return None;
        }
        Some(if config.get_incremental() && self.has(Cap::BufRingInc) {
            PoolMode::Incremental
        } else if config.get_bundles() && self.has(Cap::RecvBundle) {
            PoolMode::Bundles
        } else {
            PoolMode::Plain
        })
    }

    /// Counters of the buffer pool, if it was built.
    pub(crate) fn pool_stats(&self) -> Option<PoolStats> {
        match &self.inner.borrow().pool {
            PoolSlot::Built(pool) => Some(pool.stats()),
            PoolSlot::NotBuilt | PoolSlot::Unavailable => None,
        }
    }
}
