//! Backend choice: io_uring where the kernel allows it, epoll where it is
//! refused, and a clear error when io_uring is forced but refused.
//!
//! The refusal is real: a child process (this test binary, run again)
//! installs a seccomp filter that makes `io_uring_setup` fail with EPERM,
//! as Docker's default profile does, then starts a runtime.

use std::io;
use std::process::Command;

use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::{DriverKind, Runtime};

/// Environment variable telling the child what to do.
const CHILD: &str = "URING_BUFIO_BACKEND_TEST_CHILD";

/// Makes `io_uring_setup` fail with EPERM for this thread (and any it
/// starts), like a container runtime's seccomp profile.
fn refuse_io_uring() {
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let mut filter = [
        // seccomp_data.arch is at offset 4, .nr at offset 0.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
        jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            AUDIT_ARCH,
            1,
            0,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::SYS_io_uring_setup as u32,
            0,
            1,
        ),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: plain prctl calls; `prog` points at `filter`, both alive for
    // the call (the kernel copies the program).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0,
            "install seccomp filter: {}",
            io::Error::last_os_error()
        );
    }
}

/// Runs `test` of this binary again as a child with `mode`, returning its
/// stdout; the child fails the parent's assertion if it panics.
fn run_child(test: &str, mode: &str, env: &[(&str, &str)]) -> String {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .envs(env.iter().copied())
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {mode} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Real work on whatever backend the runtime chose: a TCP line round trip
/// through BufReader/BufWriter and a file written and read back.
fn work(rt: &Runtime) -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("f");
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = uring_bufio::spawn(async move {
            let (s, _) = listener.accept().await?;
            let (r, w) = s.into_split();
            let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
            while let Some(line) = r.next_line().await? {
                w.write_all(&[line, b"!\n"].concat()).await?;
            }
            w.shutdown().await
        });
        let (r, w) = TcpStream::connect(addr).await?.into_split();
        let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
        w.write_all(b"one\ntwo\n").await?;
        w.shutdown().await?;
        assert_eq!(r.next_line().await?, Some(&b"one!"[..]));
        assert_eq!(r.next_line().await?, Some(&b"two!"[..]));
        assert_eq!(r.next_line().await?, None);
        server.await??;

        let mut out = BufWriter::new(uring_bufio::fs::File::create(&path).await?);
        out.write_all(b"a\nb\n").await?;
        out.flush().await?;
        let mut lines = 0;
        let mut f = BufReader::new(uring_bufio::fs::File::open(&path).await?);
        while f.next_line().await?.is_some() {
            lines += 1;
        }
        assert_eq!(lines, 2);
        Ok(())
    })
}

/// With io_uring refused by seccomp, `Runtime::new` falls back to epoll and
/// works; forcing io_uring (in code or by the environment) fails with an
/// error that names the cause.
#[test]
fn refused_io_uring_falls_back_to_epoll() {
    match std::env::var(CHILD).as_deref() {
        Ok("auto") => {
            refuse_io_uring();
            let rt = Runtime::builder().build().expect("fallback runtime");
            assert_eq!(rt.driver(), DriverKind::Epoll);
            work(&rt).expect("work on epoll");
            println!("CHILD-OK driver={}", rt.driver());
        }
        Ok("forced") => {
            refuse_io_uring();
            let err = Runtime::builder()
                .driver(DriverKind::IoUring)
                .build()
                .expect_err("io_uring is refused");
            println!("CHILD-ERR kind={:?} msg={}", err.kind(), err);
        }
        Ok("env") => {
            refuse_io_uring();
            let err = Runtime::new().expect_err("io_uring is refused");
            println!("CHILD-ERR kind={:?} msg={}", err.kind(), err);
        }
        _ => {
            let name = "refused_io_uring_falls_back_to_epoll";
            // An inherited choice must not decide the automatic case.
            let auto = run_child(name, "auto", &[(uring_bufio::DRIVER_ENV, "")]);
            assert!(auto.contains("CHILD-OK driver=epoll"), "{auto}");
            for (mode, env) in [("forced", ""), ("env", "uring")] {
                let out = run_child(name, mode, &[(uring_bufio::DRIVER_ENV, env)]);
                assert!(out.contains("kind=PermissionDenied"), "{mode}: {out}");
                assert!(out.contains("seccomp"), "{mode}: {out}");
                assert!(out.contains("io_uring_disabled"), "{mode}: {out}");
            }
        }
    }
}

/// Each backend can be chosen in code and reports itself; both do real work.
/// io_uring must run on this kind of machine (kernel with io_uring enabled);
/// where the kernel refuses it the io_uring half is skipped with the reason.
#[test]
fn both_backends_chosen_in_code_do_real_work() {
    let epoll = Runtime::builder()
        .driver(DriverKind::Epoll)
        .build()
        .unwrap();
    assert_eq!(epoll.driver(), DriverKind::Epoll);
    work(&epoll).unwrap();
    match Runtime::builder().driver(DriverKind::IoUring).build() {
        Ok(rt) => {
            assert_eq!(rt.driver(), DriverKind::IoUring);
            work(&rt).unwrap();
        }
        Err(e) => eprintln!("skipping the io_uring half: the kernel refuses it: {e}"),
    }
}

/// A bad value of the environment variable is an InvalidInput error naming it.
#[test]
fn bad_driver_variable_is_a_clear_error() {
    if std::env::var(CHILD).as_deref() == Ok("badenv") {
        let err = Runtime::new().expect_err("bad value");
        println!("CHILD-ERR kind={:?} msg={}", err.kind(), err);
        return;
    }
    let out = run_child(
        "bad_driver_variable_is_a_clear_error",
        "badenv",
        &[(uring_bufio::DRIVER_ENV, "kqueue")],
    );
    assert!(out.contains("kind=InvalidInput"), "{out}");
    assert!(out.contains("URING_BUFIO_DRIVER"), "{out}");
}
