//! `IORING_OP_CONNECT`: connect a socket.

use std::io;

use io_uring::{opcode, squeue, types};

use super::Operation;
use crate::driver::{CqeResult, SharedFd};

/// Connects the socket `fd` to `addr`. The socket is owned by the operation
/// until it completes, so a dropped connect closes it once the kernel is done.
pub(crate) struct Connect {
    /// The socket being connected.
    fd: SharedFd,
    /// The address the kernel reads.
    addr: libc::sockaddr_storage,
    /// Length of the address in `addr`.
    len: libc::socklen_t,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect").field("fd", &self.fd).finish_non_exhaustive()
    }
}

impl Connect {
    /// A connect of `fd` to the raw address `addr[..len]`.
    pub(crate) fn new(fd: SharedFd, addr: libc::sockaddr_storage, len: libc::socklen_t) -> Connect {
        Connect { fd, addr, len }
    }
}

impl Operation for Connect {
    /// The connected socket.
    type Output = io::Result<SharedFd>;
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        opcode::Connect::new(
            types::Fd(self.fd.raw()),
            (&self.addr as *const libc::sockaddr_storage).cast(),
            self.len,
        )
        .build()
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        res.result?;
        Ok(self.fd)
    }
}
