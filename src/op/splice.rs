//! `IORING_OP_SPLICE`: move bytes between two fds, one of them a pipe,
//! without copying them through user space.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};

use super::{CURRENT_POS, Operation, or_wait, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, SharedFd};

/// The pipe size asked for: 1 MiB, the default `pipe-max-size`.
pub(crate) const PIPE_SIZE: libc::c_int = 1 << 20;

/// A pipe for splices, both ends together.
///
/// Every splice in flight holds a clone of both ends, and the last holder
/// closes them: closing either end of a pipe takes the pipe's lock, which a
/// splice blocked in an io_uring worker (waiting for room in a socket)
/// holds, so a close from the runtime thread while such a splice runs
/// would block the thread until the peer reads.
#[derive(Clone, Debug)]
pub(crate) struct Pipe {
    /// The read end.
    r: SharedFd,
    /// The write end.
    w: SharedFd,
    /// What the pipe holds (`F_GETPIPE_SZ`), the most one splice moves.
    size: u32,
}

impl Pipe {
    /// A new pipe, blocking (splices on epoll pass `SPLICE_F_NONBLOCK`).
    pub(crate) fn new() -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds the kernel writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds are new and owned by nothing else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // Ask for a larger pipe (fewer splices per byte); a refusal
        // (over `pipe-max-size` or the user's pipe quota) keeps the default.
        // SAFETY: plain integers on an fd we own.
        unsafe { libc::fcntl(fds[0], libc::F_SETPIPE_SZ, PIPE_SIZE) };
        // SAFETY: plain integers on an fd we own.
        let size = unsafe { libc::fcntl(fds[0], libc::F_GETPIPE_SZ) };
        Ok(Pipe {
            r: SharedFd::new(r),
            w: SharedFd::new(w),
            size: u32::try_from(size).unwrap_or(0).max(4096),
        })
    }

    /// Bytes the pipe holds.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }
}

/// Which way a [`Splice`] moves bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// From the other fd into the pipe.
    ToPipe,
    /// From the pipe to the other fd.
    FromPipe,
}

/// Splices at most `len` bytes between a pipe and another fd (a file at
/// an offset, or a socket or pipe with [`CURRENT_POS`](super::CURRENT_POS)).
///
/// The operation owns the other fd and both ends of the pipe (shared with
/// their owners), so none can be closed and its number reused while the
/// kernel still splices: a dropped future leaves the pipe open until the
/// completion arrives (see [`Pipe`] for why both ends).
#[derive(Debug)]
pub(crate) struct Splice {
    /// The fd that is not the pipe; kept open while the kernel uses it.
    other: SharedFd,
    /// Offset in `other`, or `CURRENT_POS` (pipes, sockets).
    offset: u64,
    /// The pipe, both ends.
    pipe: Pipe,
    /// Which way.
    dir: Dir,
    /// Bytes asked for.
    len: u32,
    /// Most bytes asked for (`u32::MAX`, unless a test fault shortens the
    /// transfer through `Operation::limit`).
    max: u32,
}

impl Splice {
    /// A splice from `fd_in` (at `off_in`) into `pipe`; on epoll it
    /// waits for room in the pipe.
    pub(crate) fn to_pipe(fd_in: SharedFd, off_in: u64, pipe: Pipe, len: u32) -> Splice {
        Splice::new(fd_in, off_in, pipe, Dir::ToPipe, len)
    }

    /// A splice from `pipe` to `fd_out` (a socket, a pipe, or a file at
    /// `off_out`); on epoll it waits until `fd_out` is writable. The pipe
    /// must hold bytes (a splice from an empty pipe would wait on the
    /// wrong fd).
    pub(crate) fn from_pipe(pipe: Pipe, fd_out: SharedFd, off_out: u64, len: u32) -> Splice {
        Splice::new(fd_out, off_out, pipe, Dir::FromPipe, len)
    }

    /// Either direction.
    fn new(other: SharedFd, offset: u64, pipe: Pipe, dir: Dir, len: u32) -> Splice {
        Splice {
            other,
            offset,
            pipe,
            dir,
            len,
            max: u32::MAX,
        }
    }

    /// The length asked of the kernel now.
    fn asked(&self) -> u32 {
        self.len.min(self.max)
    }

    /// `(fd_in, off_in, fd_out, off_out)`.
    fn ends(&self) -> (RawFd, u64, RawFd, u64) {
        match self.dir {
            Dir::ToPipe => (
                self.other.raw(),
                self.offset,
                self.pipe.w.raw(),
                CURRENT_POS,
            ),
            Dir::FromPipe => (
                self.pipe.r.raw(),
                CURRENT_POS,
                self.other.raw(),
                self.offset,
            ),
        }
    }
}

/// `off` as the `off_t` splice(2) takes, or `None` for "no offset".
fn offset(off: u64) -> Option<libc::loff_t> {
    (off != CURRENT_POS).then_some(off as libc::loff_t)
}

impl Operation for Splice {
    type Output = io::Result<usize>;
    // A splice into a socket waits for the peer, which may never read.
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        let (fd_in, off_in, fd_out, off_out) = self.ends();
        // io_uring takes -1 for "no offset": `CURRENT_POS` as i64.
        opcode::Splice::new(
            types::Fd(fd_in),
            off_in as i64,
            types::Fd(fd_out),
            off_out as i64,
            self.asked(),
        )
        .flags(libc::SPLICE_F_MOVE)
        .build()
    }

    fn attempt(&mut self) -> Attempt {
        let (fd_in, off_in, fd_out, off_out) = self.ends();
        let (mut off_in, mut off_out) = (offset(off_in), offset(off_out));
        let ptr = |o: &mut Option<libc::loff_t>| o.as_mut().map_or(std::ptr::null_mut(), |o| o);
        let (p_in, p_out) = (ptr(&mut off_in), ptr(&mut off_out));
        let len = self.asked() as usize;
        let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
        // A socket honours only its own O_NONBLOCK, not SPLICE_F_NONBLOCK:
        // make it non-blocking for this one call, as connect does.
        let res = nonblocking(fd_out, || {
            // SAFETY: the offsets point to locals living across the call
            // (or are null); the fds are held open by `self`.
            syscall_result(unsafe { libc::splice(fd_in, p_in, fd_out, p_out, len, flags) })
        });
        or_wait(res, fd_out, Interest::Write)
    }

    fn transfer_len(&self) -> Option<usize> {
        Some(self.len as usize)
    }

    fn limit(&mut self, max: usize) -> bool {
        self.max = u32::try_from(max).unwrap_or(u32::MAX);
        true
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        match res.result {
            Ok(n) => Ok(n as usize),
            // A splice blocked in an io_uring worker and interrupted by a
            // signal meant for the worker (a cancel of an earlier request)
            // can report the kernel-internal ERESTARTSYS family (512..=516)
            // instead of EINTR; nothing was moved, so it is EINTR.
            Err(e) if matches!(e.raw_os_error(), Some(512..=516)) => {
                Err(io::Error::from_raw_os_error(libc::EINTR))
            }
            Err(e) => Err(e),
        }
    }
}

/// Runs `f` with `O_NONBLOCK` set on `fd`, restoring its flags afterwards
/// (when they had to change). A failing `fcntl` is returned as the result
/// without running `f` (which could then block the runtime thread).
fn nonblocking(fd: libc::c_int, f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: plain integers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return syscall_result(flags as isize);
    }
    if flags & libc::O_NONBLOCK != 0 {
        return f();
    }
    // SAFETY: plain integers.
    let set = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    if set < 0 {
        return syscall_result(set as isize);
    }
    let res = f();
    // SAFETY: plain integers.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
    res
}
