//! Streaming JTL writer: one CSV line per [`Row`], header first.
//!
//! Fields are quoted as CSV requires (RFC 4180: a field holding a comma, a
//! double quote, CR or LF is enclosed in double quotes, inner quotes
//! doubled), which is also what JMeter writes and reads.

use std::io::{self, Write};

use super::{Row, header_line};

/// Writes a JTL file line by line. Wrap the sink in a `BufWriter`.
#[derive(Debug)]
pub struct JtlWriter<W: Write> {
    w: W,
    rows: u64,
}

impl<W: Write> JtlWriter<W> {
    /// Start a file: writes the header line.
    pub fn new(mut w: W) -> io::Result<JtlWriter<W>> {
        w.write_all(header_line().as_bytes())?;
        w.write_all(b"\n")?;
        Ok(JtlWriter { w, rows: 0 })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Append one row.
    pub fn write_row(&mut self, r: &Row) -> io::Result<()> {
        let w = &mut self.w;
        let mut num = itoa::Buffer::new();
        w.write_all(num.format(r.timestamp_ms).as_bytes())?;
        w.write_all(b",")?;
        w.write_all(num.format(r.elapsed_ms).as_bytes())?;
        w.write_all(b",")?;
        write_field(w, &r.label)?;
        w.write_all(b",")?;
        write_field(w, &r.response_code)?;
        w.write_all(b",")?;
        write_field(w, &r.response_message)?;
        w.write_all(b",")?;
        write_field(w, &r.thread_name)?;
        w.write_all(b",")?;
        write_field(w, &r.data_type)?;
        w.write_all(if r.success { b",true," } else { b",false," })?;
        write_field(w, &r.failure_message)?;
        for n in [r.bytes, r.sent_bytes, r.grp_threads, r.all_threads] {
            w.write_all(b",")?;
            w.write_all(num.format(n).as_bytes())?;
        }
        w.write_all(b",")?;
        write_field(w, &r.url)?;
        for n in [r.latency_ms, r.idle_time_ms, r.connect_ms] {
            w.write_all(b",")?;
            w.write_all(num.format(n).as_bytes())?;
        }
        for n in [
            r.elapsed_us,
            r.latency_us,
            r.connect_us,
            r.handler_us,
            r.op_us,
        ] {
            w.write_all(b",")?;
            if let Some(n) = n {
                w.write_all(num.format(n).as_bytes())?;
            }
        }
        w.write_all(b",")?;
        if let Some(o) = r.outcome {
            w.write_all(o.as_str().as_bytes())?;
        }
        w.write_all(b",")?;
        write_field(w, &r.config)?;
        w.write_all(b",")?;
        if let Some(n) = r.intended_timestamp_ms {
            w.write_all(num.format(n).as_bytes())?;
        }
        w.write_all(b"\n")?;
        self.rows += 1;
        Ok(())
    }

    /// Flush and return the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Write one CSV field, quoted when it must be.
pub fn write_field<W: Write + ?Sized>(w: &mut W, s: &str) -> io::Result<()> {
    if !s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        return w.write_all(s.as_bytes());
    }
    w.write_all(b"\"")?;
    let mut rest = s;
    while let Some(i) = rest.find('"') {
        w.write_all(&rest.as_bytes()[..=i])?;
        w.write_all(b"\"")?;
        rest = &rest[i + 1..];
    }
    w.write_all(rest.as_bytes())?;
    w.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    fn field(s: &str) -> String {
        let mut v = Vec::new();
        write_field(&mut v, s).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn quoting() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field(""), "");
    }

    #[test]
    fn one_row() {
        let mut w = JtlWriter::new(Vec::new()).unwrap();
        let row = Row {
            timestamp_ms: 1_700_000_000_123,
            elapsed_ms: 51,
            label: "blur".into(),
            response_code: "504".into(),
            response_message: "Gateway Timeout".into(),
            thread_name: "vaccel-bench 1-3".into(),
            data_type: "text".into(),
            success: false,
            failure_message: "HTTP 504, \"slow\"".into(),
            bytes: 100,
            sent_bytes: 2000,
            grp_threads: 4,
            all_threads: 4,
            url: "http://127.0.0.1:8080/function/blur".into(),
            latency_ms: 50,
            idle_time_ms: 0,
            connect_ms: 1,
            elapsed_us: Some(51_234),
            latency_us: Some(50_001),
            connect_us: Some(1_200),
            handler_us: None,
            op_us: None,
            outcome: Some(Outcome::GatewayTimeout),
            config: "t4-think1s".into(),
            intended_timestamp_ms: None,
        };
        w.write_row(&row).unwrap();
        assert_eq!(w.rows(), 1);
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), header_line());
        assert_eq!(
            lines.next().unwrap(),
            "1700000000123,51,blur,504,Gateway Timeout,vaccel-bench 1-3,text,false,\
             \"HTTP 504, \"\"slow\"\"\",100,2000,4,4,http://127.0.0.1:8080/function/blur,50,0,1,\
             51234,50001,1200,,,504,t4-think1s,"
        );
    }
}
