//! What the long-running examples read about their own process: open fds,
//! resident memory, and the fd limit they raise. Included with `#[path]`
//! by `soak.rs` and `idle.rs`.

/// Open fds of this process.
#[allow(dead_code)] // not every example counts fds
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Resident memory of this process in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Raises the fd limit to at least `want` and the hard limit (the hard
/// limit too, where the process may: root with CAP_SYS_RESOURCE can), else
/// the soft limit to the hard one; returns the soft limit.
pub fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` and `raised` are valid rlimits for the kernel to fill
    // and read for the duration of each call.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let top = want.max(lim.rlim_max);
        let raised = libc::rlimit {
            rlim_cur: top,
            rlim_max: top,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}
