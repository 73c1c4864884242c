//! RESP2 reply encoders: each appends to `out`, a buffer kept from batch
//! to batch, so encoding allocates nothing once it has grown. Part of
//! `proto.rs`.

/// `+<s>\r\n`.
pub fn simple(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'+');
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// `-<msg>\r\n`; `msg` starts with its error code (`ERR ...`).
pub fn error(out: &mut Vec<u8>, msg: &str) {
    out.push(b'-');
    out.extend_from_slice(msg.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `:<n>\r\n`.
pub fn int(out: &mut Vec<u8>, n: i64) {
    prefixed(out, b':', n);
}

/// `*<n>\r\n`, the header of an array of `n` replies.
pub fn array(out: &mut Vec<u8>, n: usize) {
    prefixed(out, b'*', n as i64);
}

/// `$<len>\r\n<bytes>\r\n`, or the null bulk `$-1\r\n`.
pub fn bulk(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.extend_from_slice(b"$-1\r\n"),
        Some(v) => {
            prefixed(out, b'$', v.len() as i64);
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// `<c><n>\r\n`.
fn prefixed(out: &mut Vec<u8>, c: u8, n: i64) {
    let mut digits = [0u8; 20];
    out.push(c);
    out.extend_from_slice(format_int(n, &mut digits));
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, written into `digits` without allocating.
pub fn format_int(n: i64, digits: &mut [u8; 20]) -> &[u8] {
    let mut pos = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        pos -= 1;
        digits[pos] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        pos -= 1;
        digits[pos] = b'-';
    }
    &digits[pos..]
}
