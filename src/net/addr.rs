//! Socket addresses to and from the kernel's raw `sockaddr` forms.
//!
//! Operations own their address as a `sockaddr_storage` (large and aligned
//! enough for every address family), so conversions write into and read out
//! of one: `sockaddr_in` / `sockaddr_in6` for TCP, `sockaddr_un` for Unix
//! paths. Byte order follows the kernel: ports and IPv4 addresses in network
//! order; flow info and scope id as the host value, like std does.

use std::io;
use std::mem::{offset_of, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A raw address: the storage and the length of the address inside it.
pub(crate) type RawAddr = (libc::sockaddr_storage, libc::socklen_t);

/// An all-zero storage (family `AF_UNSPEC`).
fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Writes `addr` at the start of `storage` and returns the length written.
///
/// `T` must be one of the `sockaddr_*` types (all fit in the storage).
fn write_into<T: Copy>(storage: &mut libc::sockaddr_storage, addr: T) -> libc::socklen_t {
    const { assert!(size_of::<T>() <= size_of::<libc::sockaddr_storage>()) };
    // SAFETY: `T` fits in the storage (checked at compile time above) and
    // sockaddr_storage is aligned for every sockaddr type (POSIX guarantees
    // this, and all of them are plain data).
    unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast::<T>(), addr) };
    size_of::<T>() as libc::socklen_t
}

/// Reads a `T` from the start of `storage`, if `len` covers it.
fn read_from<T: Copy>(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> io::Result<T> {
    const { assert!(size_of::<T>() <= size_of::<libc::sockaddr_storage>()) };
    if (len as usize) < size_of::<T>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("kernel returned a socket address of {len} bytes, too short for its family"),
        ));
    }
    // SAFETY: `T` fits in the storage and is plain data, the storage is
    // aligned for it (as in `write_into`), and every bit pattern is valid.
    Ok(unsafe { std::ptr::read((storage as *const libc::sockaddr_storage).cast::<T>()) })
}

/// The raw form of an IP socket address.
pub(crate) fn socket_addr_to_raw(addr: &SocketAddr) -> RawAddr {
    let mut storage = zeroed_storage();
    let len = match addr {
        SocketAddr::V4(a) => write_into(&mut storage, sockaddr_in(a)),
        SocketAddr::V6(a) => write_into(&mut storage, sockaddr_in6(a)),
    };
    (storage, len)
}

/// `sockaddr_in` for `addr`.
fn sockaddr_in(addr: &SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

/// `sockaddr_in6` for `addr`.
fn sockaddr_in6(addr: &SocketAddrV6) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: addr.port().to_be(),
        sin6_flowinfo: addr.flowinfo(),
        sin6_addr: libc::in6_addr {
            s6_addr: addr.ip().octets(),
        },
        sin6_scope_id: addr.scope_id(),
    }
}

/// The IP socket address the kernel wrote into `storage[..len]`.
pub(crate) fn socket_addr_from_raw(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> io::Result<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            let a: libc::sockaddr_in = read_from(storage, len)?;
            let ip = Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            let a: libc::sockaddr_in6 = read_from(storage, len)?;
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Ok(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        family => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("kernel returned a socket address of family {family}, expected IPv4 or IPv6"),
        )),
    }
}

/// The raw form of a Unix socket path (`sockaddr_un`, NUL-terminated path).
///
/// Fails with `InvalidInput` if the path contains a NUL byte or does not fit
/// the kernel's 108-byte `sun_path`.
pub(crate) fn unix_path_to_raw(path: &Path) -> io::Result<RawAddr> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.contains(&0) {
        return Err(invalid_path("must not contain NUL bytes", path));
    }
    if bytes.len() >= sun.sun_path.len() {
        return Err(invalid_path(
            "is too long for a Unix socket (max 107 bytes)",
            path,
        ));
    }
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in sun.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let mut storage = zeroed_storage();
    write_into(&mut storage, sun);
    // The path and its terminating NUL (already zero).
    let len = offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Ok((storage, len as libc::socklen_t))
}

/// An `InvalidInput` error about a socket path.
fn invalid_path(why: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("socket path {} {why}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_round_trip() {
        let addr: SocketAddr = "192.0.2.7:8080".parse().unwrap();
        let (storage, len) = socket_addr_to_raw(&addr);
        assert_eq!(len as usize, size_of::<libc::sockaddr_in>());
        assert_eq!(socket_addr_from_raw(&storage, len).unwrap(), addr);
    }

    #[test]
    fn ipv6_round_trip_keeps_flowinfo_and_scope() {
        let addr = SocketAddrV6::new("fe80::1".parse().unwrap(), 443, 7, 3).into();
        let (storage, len) = socket_addr_to_raw(&addr);
        assert_eq!(len as usize, size_of::<libc::sockaddr_in6>());
        assert_eq!(socket_addr_from_raw(&storage, len).unwrap(), addr);
    }

    #[test]
    fn short_length_is_invalid_data() {
        let (storage, _) = socket_addr_to_raw(&"127.0.0.1:1".parse().unwrap());
        let err = socket_addr_from_raw(&storage, 4).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn unknown_family_is_invalid_data() {
        let storage = zeroed_storage();
        let err = socket_addr_from_raw(&storage, 16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn unix_path_is_nul_terminated() {
        let (storage, len) = unix_path_to_raw(Path::new("/tmp/s")).unwrap();
        let full = size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let sun: libc::sockaddr_un = read_from(&storage, full).unwrap();
        assert_eq!(libc::c_int::from(sun.sun_family), libc::AF_UNIX);
        assert_eq!(len as usize, offset_of!(libc::sockaddr_un, sun_path) + 7);
        let path: Vec<u8> = sun.sun_path[..7].iter().map(|&c| c as u8).collect();
        assert_eq!(path, b"/tmp/s\0");
    }

    #[test]
    fn unix_path_errors() {
        let long = "x".repeat(108);
        for bad in [Path::new("a\0b"), Path::new(&long)] {
            let err = unix_path_to_raw(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        assert!(unix_path_to_raw(Path::new(&"x".repeat(107))).is_ok());
    }
}
