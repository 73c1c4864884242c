//! The test switch `URING_BUFIO_CAPS_OFF`: each capability it names is off
//! on a real io_uring, and the path the crate takes without it runs.
//!
//! [`switched_off_capabilities_take_effect`] checks the runtime against
//! whatever the variable says in this process (all on when unset: this
//! project's kernel has every capability), so CI's matrix runs it with each
//! one off. [`each_switch_takes_effect`] runs it in child processes, one
//! per name, so a plain `cargo test` covers every switch too.

mod support;

use std::process::Command;

use support::{run_on, unix_pair};
use uring_bufio::io::BufReader;
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::{CAPS_OFF_ENV, Capability, DriverKind, Runtime, spawn};

/// Every capability with its name in the switch.
const NAMED: [(Capability, &str); 8] = [
    (Capability::BufRing, "buf_ring"),
    (Capability::MultishotRecv, "multishot_recv"),
    (Capability::RecvLimit, "recv_limit"),
    (Capability::RecvBundle, "recv_bundle"),
    (Capability::BufRingInc, "buf_ring_inc"),
    (Capability::MultishotAccept, "multishot_accept"),
    (Capability::DeferTaskrun, "defer_taskrun"),
    (Capability::PollFirst, "poll_first"),
];

/// Whether the switch in this process's environment names `name`.
fn switched_off(name: &str) -> bool {
    let list = std::env::var(CAPS_OFF_ENV).unwrap_or_default();
    list.split(',')
        .map(str::trim)
        .any(|n| n == name || n == "all")
}

/// Checks that the runtime has exactly the capabilities not switched off
/// (none on epoll), and that pooled readers and accepts work either way.
#[test]
fn switched_off_capabilities_take_effect() {
    let rt = Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let uring = rt.driver() == DriverKind::IoUring;
    for (cap, name) in NAMED {
        assert_eq!(rt.has(cap), uring && !switched_off(name), "{name}");
        assert_eq!(cap.name(), name);
    }
    let ring = rt.has(Capability::BufRing) && rt.has(Capability::MultishotRecv);
    run_on(&rt, support::TEST_LIMIT, async {
        let pooled = pooled_read().await?;
        assert_eq!(pooled, !uring || ring, "pooled readers pool where they can");
        accept_three().await
    });
    let Some(stats) = rt.pool_stats() else {
        assert!(uring && !ring, "the pool was not built");
        return;
    };
    let inc = stats.kernel_ring && rt.has(Capability::BufRingInc);
    assert_eq!(stats.kernel_ring, uring, "{stats:?}");
    assert_eq!(stats.incremental, inc, "{stats:?}");
    assert_eq!(
        stats.bundles,
        stats.kernel_ring && !inc && rt.has(Capability::RecvBundle)
    );
}

/// Reads a message through a pooled reader; returns whether it pooled.
async fn pooled_read() -> std::io::Result<bool> {
    let (a, b) = unix_pair();
    let writer = spawn(async move { a.write_all(&b"hello, pool"[..]).await.0 });
    let mut r = BufReader::pooled(b);
    let got = r.fill_at_least(11).await?.to_vec();
    assert_eq!(got, b"hello, pool");
    writer.await??;
    Ok(r.is_pooled())
}

/// Three accepts waiting at once, each served exactly once.
async fn accept_three() -> std::io::Result<()> {
    let listener = std::rc::Rc::new(TcpListener::bind("127.0.0.1:0")?);
    let addr = listener.local_addr()?;
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let l = listener.clone();
            spawn(async move { l.accept().await.map(|(s, peer)| (s, peer.port())) })
        })
        .collect();
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(TcpStream::connect(addr).await?.local_addr()?.port());
    }
    let mut theirs = Vec::new();
    for task in tasks {
        theirs.push(task.await??.1);
    }
    mine.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(mine, theirs, "each connection accepted once, with its peer");
    Ok(())
}

/// Runs [`switched_off_capabilities_take_effect`] in a child process with
/// the switch set to `list`; returns whether it passed, and its output.
fn child(list: &str) -> (bool, String) {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "switched_off_capabilities_take_effect",
            "--exact",
            "--nocapture",
        ])
        .env(CAPS_OFF_ENV, list)
        .output()
        .expect("run the test binary");
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text.into_owned())
}

#[test]
fn each_switch_takes_effect() {
    let lists = NAMED
        .iter()
        .map(|(_, n)| *n)
        .chain(["all", "buf_ring_inc, recv_bundle"]);
    for list in lists {
        let (ok, out) = child(list);
        assert!(ok, "{CAPS_OFF_ENV}={list}:\n{out}");
    }
}

#[test]
fn an_unknown_name_stops_the_runtime_from_starting() {
    let (ok, out) = child("buf_ring,no_such_cap");
    assert!(!ok, "a runtime started with an unknown name:\n{out}");
    assert!(out.contains("unknown capability \"no_such_cap\""), "{out}");
}
