//! The function's output streams, copied line by line to the watchdog's
//! stderr (the container log), optionally prefixed like of-watchdog does
//! (`2006/01/02 15:04:05 stderr: ...`).

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// How function output is logged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogOptions {
    /// Add date, time and stream name to each line.
    pub prefix: bool,
    /// The longest line; longer ones are split.
    pub max_line: usize,
}

/// The most of a stream kept for error responses.
pub(crate) const EXCERPT: usize = 4096;

/// Log every line of `r` as `name`; return the last [`EXCERPT`] bytes.
pub(crate) async fn pipe_lines<R: AsyncRead + Unpin>(
    r: R,
    name: &'static str,
    opts: LogOptions,
) -> String {
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    loop {
        line.clear();
        match read_line(&mut r, &mut line, opts.max_line.max(1)).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        tail.extend_from_slice(&line);
        if tail.len() > 2 * EXCERPT {
            tail.drain(..tail.len() - EXCERPT);
        }
        emit(name, &line, opts.prefix);
    }
    if tail.len() > EXCERPT {
        tail.drain(..tail.len() - EXCERPT);
    }
    String::from_utf8_lossy(&tail).into_owned()
}

/// Read up to and including a newline, or `max` bytes.
async fn read_line<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    out: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(out.len());
        }
        let room = max - out.len();
        let window = &buf[..buf.len().min(room)];
        if let Some(i) = window.iter().position(|b| *b == b'\n') {
            out.extend_from_slice(&window[..=i]);
            r.consume(i + 1);
            return Ok(out.len());
        }
        let n = window.len();
        out.extend_from_slice(window);
        r.consume(n);
        if out.len() >= max {
            return Ok(out.len());
        }
    }
}

fn emit(name: &str, line: &[u8], prefix: bool) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut out = Vec::with_capacity(line.len() + 32);
    if prefix {
        out.extend_from_slice(log_time(SystemTime::now()).as_bytes());
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
    }
    out.extend_from_slice(line);
    out.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&out);
}

/// Go's log timestamp, `2006/01/02 15:04:05`, in UTC.
pub(crate) fn log_time(t: SystemTime) -> String {
    stamp(t, '/', ' ', "")
}

/// RFC 3339 in UTC, `2006-01-02T15:04:05Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    stamp(t, '-', 'T', "Z")
}

/// `YYYY<sep>MM<sep>DD<between>hh:mm:ss<end>` in UTC.
fn stamp(t: SystemTime, sep: char, between: char, end: &str) -> String {
    let t = utc(t);
    format!(
        "{:04}{sep}{:02}{sep}{:02}{between}{:02}:{:02}:{:02}{end}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A point in time in UTC (the epoch for times before it or out of range).
fn utc(t: SystemTime) -> time::OffsetDateTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn calendar() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_709_251_199)), "2024-02-29T23:59:59Z");
        assert_eq!(log_time(at(1_735_689_600)), "2025/01/01 00:00:00");
        assert_eq!(rfc3339(at(4_102_444_800)), "2100-01-01T00:00:00Z");
    }

    #[tokio::test]
    async fn lines_are_split_and_the_tail_kept() {
        let input: &[u8] = b"one\ntwo\r\nabcdefghij\nlast";
        let opts = LogOptions {
            prefix: true,
            max_line: 4,
        };
        let tail = pipe_lines(input, "stderr", opts).await;
        assert_eq!(tail, "one\ntwo\r\nabcdefghij\nlast");
        let mut r = BufReader::new(&b"abcdefghij\n"[..]);
        let mut l = Vec::new();
        read_line(&mut r, &mut l, 4).await.unwrap();
        assert_eq!(l, b"abcd");
    }
}
