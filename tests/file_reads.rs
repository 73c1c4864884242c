//! How a reader fills from a regular file: bytes the page cache holds are
//! read at once with `preadv2(RWF_NOWAIT)`, without the ring; bytes it does
//! not hold go through the ring (io_uring, or the epoll backend's read);
//! a file that cannot be read that way (a FIFO) is read by the ring from
//! then on; and a task scanning a cached file still lets the runtime's
//! other tasks run.

mod support;

use std::cell::Cell;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::rc::Rc;

use support::run;
use support::yield_now;
use uring_bufio::fs::File;
use uring_bufio::io::BufReader;

/// `n` lines of varying length (line `i` holds `i % 200` bytes and `\n`).
fn lines(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend((0..i % 200).map(|j| b'a' + ((i + j) % 26) as u8));
        out.push(b'\n');
    }
    out
}

/// Reads every line of `path` with `next_line`; the lines joined again.
async fn read_lines(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut r = BufReader::new(File::open(path).await?);
    let mut got = Vec::new();
    while let Some(line) = r.next_line().await? {
        got.extend_from_slice(line);
        got.push(b'\n');
    }
    Ok(got)
}

/// A file in the target directory (a real file system, where the page
/// cache can be dropped; a tmpfs keeps its pages).
fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

/// Whether the first page of `path` is in the page cache (`mincore` on a
/// mapping, which reads nothing and so starts no read-ahead).
fn first_page_cached(path: &Path) -> bool {
    let f = std::fs::File::open(path).expect("open");
    // SAFETY: a private read-only mapping of one page of an open file,
    // unmapped below; `mincore` writes one byte per page into `vec`.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(addr, libc::MAP_FAILED, "mmap");
        let mut vec = 0u8;
        assert_eq!(libc::mincore(addr, 4096, &mut vec), 0, "mincore");
        libc::munmap(addr, 4096);
        vec & 1 == 1
    }
}

/// A file whose pages were dropped from the page cache: the first read
/// cannot be served at once, goes through the ring, and every byte
/// arrives in order.
#[test]
fn an_uncached_file_is_read_through_the_ring() {
    let dir = temp_dir();
    let path = dir.path().join("cold");
    let content = lines(20_000);
    let f = std::fs::File::create(&path).expect("create");
    (&f).write_all(&content).expect("write");
    f.sync_all().expect("fsync");
    // SAFETY: a valid fd; advice only.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "fadvise");
    assert!(!first_page_cached(&path), "the pages were dropped");
    run(async {
        assert!(read_lines(&path).await? == content, "every byte in order");
        Ok(())
    });
}

/// A FIFO opened as a file has no offset to read at: the reader reads it
/// through the ring from the first try on, every line in order.
#[test]
fn a_fifo_opened_as_a_file_is_read_through_the_ring() {
    let dir = temp_dir();
    let path = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(path.to_str().expect("utf-8")).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let content = lines(3_000);
    let writer = {
        let (path, content) = (path.clone(), content.clone());
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(&path)?;
            w.write_all(&content)
        })
    };
    run(async {
        assert!(read_lines(&path).await? == content, "every byte in order");
        Ok(())
    });
    writer.join().expect("writer").expect("write");
}

/// Reading a cached file never has to wait, yet the scanning task yields
/// to the runtime now and then (once per 16 reads): a task spawned beside
/// it runs during the scan, not only after it.
#[test]
fn a_scan_of_a_cached_file_lets_other_tasks_run() {
    let dir = temp_dir();
    let path = dir.path().join("warm");
    let content = lines(80_000); // about 8 MiB: 128 reads of 64 KiB
    std::fs::write(&path, &content).expect("write");
    assert_eq!(std::fs::read(&path).expect("read"), content, "now cached");
    run(async {
        let (ticks, done) = (Rc::new(Cell::new(0u32)), Rc::new(Cell::new(false)));
        let other = uring_bufio::spawn({
            let (ticks, done) = (ticks.clone(), done.clone());
            async move {
                while !done.get() {
                    ticks.set(ticks.get() + 1);
                    yield_now().await;
                }
            }
        });
        yield_now().await;
        let before = ticks.get();
        assert!(read_lines(&path).await? == content, "every byte in order");
        let during = ticks.get() - before;
        done.set(true);
        other
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        assert!(
            during >= 4,
            "the other task ran {during} times during the scan"
        );
        Ok(())
    });
}

/// Under a fault plan every read goes through the ring, cached or not, so
/// the plan's short transfers reach file readers too: a cached file read
/// with every transfer cut to 7 bytes arrives whole, through many cut reads.
#[cfg(feature = "fault-injection")]
#[test]
fn a_fault_plan_sees_every_read_of_a_cached_file() {
    let dir = temp_dir();
    let path = dir.path().join("lines");
    let data = lines(300);
    std::fs::write(&path, &data).expect("write");
    std::fs::read(&path).expect("warm the page cache");
    let rt = uring_bufio::Runtime::builder()
        .faults(uring_bufio::faults::FaultPlan::new(3).max_io(7))
        .build()
        .expect("runtime");
    let got = rt.block_on(read_lines(&path)).expect("read");
    assert_eq!(got, data);
    let short = rt.fault_stats().short;
    assert!(
        short as usize >= data.len() / 7 / 2,
        "only {short} cut reads"
    );
}
