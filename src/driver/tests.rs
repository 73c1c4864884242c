//! The driver's capability decisions on a real io_uring (this project's
//! kernel has every capability), with single ones switched off.

use std::os::fd::AsRawFd;
use std::time::Duration;

use super::caps::{Cap, Caps};
use super::eventfd::EventFd;
use super::{Config, Driver, Kind, PoolMode};

/// A driver of `kind` (default pool settings) with the capabilities in
/// `off` switched off, and
/// the eventfd it watches (closed after it).
fn driver(kind: Kind, off: &[Cap]) -> (Driver, EventFd) {
    let wake = EventFd::new().expect("eventfd");
    let off = off.iter().fold(Caps::NONE, |set, &cap| set.with(cap, true));
    let config = Config {
        entries: 8,
        kind: Some(kind),
        ..Config::default()
    };
    let driver = Driver::start(&config, wake.as_raw_fd(), off).expect("driver");
    (driver, wake)
}

/// Shuts `driver` down; nothing may be left in flight.
fn stop(driver: Driver) {
    assert_eq!(driver.shutdown(Duration::from_secs(5)), 0);
}

#[test]
fn each_switched_off_capability_is_off_and_only_it() {
    for (cap, name) in Cap::NAMED {
        let (d, _wake) = driver(Kind::IoUring, &[cap]);
        for (other, _) in Cap::NAMED {
            assert_eq!(d.has(other), other != cap, "{name} off, asked {other}");
        }
        stop(d);
    }
}

#[test]
fn epoll_has_no_capability_but_a_user_space_pool() {
    let (d, _wake) = driver(Kind::Epoll, &[]);
    assert!(Cap::NAMED.iter().all(|&(cap, _)| !d.has(cap)));
    let pool = d.pool().expect("epoll pools in user space");
    assert!(!pool.stats().kernel_ring);
    drop(pool);
    stop(d);
}

#[test]
fn without_buffer_rings_or_multishot_receive_there_is_no_pool() {
    for off in [Cap::BufRing, Cap::MultishotRecv] {
        let (d, _wake) = driver(Kind::IoUring, &[off]);
        assert!(d.pool().is_none(), "{off} off");
        assert!(d.pool().is_none(), "{off} off, asked again");
        assert!(d.pool_stats().is_none(), "{off} off");
        stop(d);
    }
}

#[test]
fn the_pool_mode_falls_back_with_the_capabilities() {
    let cases = [
        (&[][..], PoolMode::Incremental),
        (&[Cap::BufRingInc][..], PoolMode::Bundles),
        (&[Cap::BufRingInc, Cap::RecvBundle][..], PoolMode::Plain),
    ];
    for (off, mode) in cases {
        let (d, _wake) = driver(Kind::IoUring, off);
        let pool = d.pool().expect("a kernel pool");
        assert_eq!(pool.mode(), mode, "{off:?} off");
        assert!(d.pool_stats().expect("built").kernel_ring);
        drop(pool);
        stop(d);
    }
}

#[test]
fn without_receive_limits_no_receive_carries_one() {
    let (d, _wake) = driver(Kind::IoUring, &[]);
    assert!(d.pool().expect("pool").receive_limit(1).is_some());
    stop(d);
    let (d, _wake) = driver(Kind::IoUring, &[Cap::RecvLimit]);
    assert_eq!(d.pool().expect("pool").receive_limit(1), None);
    stop(d);
}
