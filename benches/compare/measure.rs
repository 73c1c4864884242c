//! Measuring tools: thread placement, a per-thread system call counter, and
//! order statistics.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

/// Pins the calling thread to one CPU (its children inherit the mask).
pub fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed cpu_set_t and `cpu` is
    // far below CPU_SETSIZE (1024) on this machine.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: passes a pointer to a live cpu_set_t of the size given.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// CPU time (user and system) the calling thread has used so far, in
/// seconds. Kernel work done for it on other threads (io-wq workers,
/// softirqs charged elsewhere) is not in it.
pub fn thread_cpu_secs() -> f64 {
    cpu_secs(libc::RUSAGE_THREAD)
}

/// CPU time (user and system) of the whole process so far, in seconds,
/// io-wq worker threads included.
pub fn process_cpu_secs() -> f64 {
    cpu_secs(libc::RUSAGE_SELF)
}

/// `getrusage(who)`'s user plus system time, in seconds (NaN on failure).
fn cpu_secs(who: libc::c_int) -> f64 {
    // SAFETY: `rusage` is plain data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live, writable rusage.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Number of CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `struct perf_event_attr` as of its first version (`PERF_ATTR_SIZE_VER0`,
/// 64 bytes), which every kernel accepts.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    /// `PERF_TYPE_*`.
    kind: u32,
    /// Size of this struct.
    size: u32,
    /// For a tracepoint: its id.
    config: u64,
    /// Unused (counting, not sampling).
    sample_period: u64,
    /// Unused.
    sample_type: u64,
    /// Unused: a read returns one u64.
    read_format: u64,
    /// Bit field: bit 0 `disabled`, bit 1 `inherit`, ...
    flags: u64,
    /// Unused.
    wakeup_events: u32,
    /// Unused.
    bp_type: u32,
    /// Unused.
    config1: u64,
}

/// `PERF_TYPE_TRACEPOINT`.
const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// The `inherit` bit of `flags`: threads created later are counted too.
const INHERIT: u64 = 1 << 1;

/// Counts the system calls made by the thread that created it and by the
/// threads it starts afterwards (their counts are added when they exit),
/// through the `raw_syscalls:sys_enter` tracepoint.
#[derive(Debug)]
pub struct SyscallCounter {
    /// The perf event.
    fd: OwnedFd,
}

impl SyscallCounter {
    /// A counter for the calling thread, or `None` where perf events or
    /// tracefs are not available (the figure is then reported as NaN).
    pub fn start() -> Option<SyscallCounter> {
        let id = tracepoint_id()?;
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: size_of::<PerfEventAttr>() as u32,
            config: id,
            flags: INHERIT,
            ..PerfEventAttr::default()
        };
        // SAFETY: `attr` is a live, initialised perf_event_attr of the size
        // it declares; pid 0 / cpu -1 is "this thread, any CPU".
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                0,
                -1,
                -1,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a new perf event fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Some(SyscallCounter { fd })
    }

    /// System calls counted so far.
    pub fn read(&self) -> Option<u64> {
        use std::os::fd::AsRawFd;
        let mut n = 0u64;
        // SAFETY: reads 8 bytes into a live u64.
        let got = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut n).cast(), 8) };
        (got == 8).then_some(n)
    }
}

/// Counts `f`'s system calls on this thread (and threads it starts).
pub fn count_syscalls<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let counter = SyscallCounter::start();
    let out = f();
    let n = counter
        .and_then(|c| c.read())
        .map_or(f64::NAN, |n| n as f64);
    (out, n)
}

/// The id of the `raw_syscalls:sys_enter` tracepoint.
fn tracepoint_id() -> Option<u64> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .find_map(|root| {
            std::fs::read_to_string(format!("{root}/events/raw_syscalls/sys_enter/id")).ok()
        })
        .and_then(|s| s.trim().parse().ok())
}

/// Median, minimum and maximum of some figures (NaNs ignored).
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    /// The median (mean of the middle two for an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; all NaN when there is no figure.
    pub fn of(values: &[f64]) -> Spread {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Spread {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[v.len() - 1],
        }
    }
}

/// The `q` quantile (0..=1) of sorted latencies, in microseconds.
pub fn quantile_us(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}
