//! The JTL results file: JMeter 5's default CSV columns, in JMeter's order,
//! followed by our own µs-precision columns.
//!
//! One line per request, header line first. The JMeter columns carry
//! JMeter's semantics (milliseconds, `timeStamp` = request start in Unix
//! epoch ms, `elapsed` = round trip, `Latency` = time to first byte,
//! `Connect` = connect time, 0 on a reused connection), so JMeter's own
//! tooling and anything that reads JMeter results can read ours. The extra
//! columns ([`EXTRA_COLUMNS`]) are integers in microseconds, empty when
//! unknown; a reader must accept files without them (a plain JMeter JTL).
//!
//! [`write`](mod@write) streams rows; [`read`](mod@read) reads them back.

use crate::model::Outcome;

pub mod read;
pub mod write;

/// JMeter 5's default CSV columns, in order.
pub const JMETER_COLUMNS: [&str; 17] = [
    "timeStamp",
    "elapsed",
    "label",
    "responseCode",
    "responseMessage",
    "threadName",
    "dataType",
    "success",
    "failureMessage",
    "bytes",
    "sentBytes",
    "grpThreads",
    "allThreads",
    "URL",
    "Latency",
    "IdleTime",
    "Connect",
];

/// Our columns, appended after [`JMETER_COLUMNS`].
pub const EXTRA_COLUMNS: [&str; 8] = [
    "elapsedUs",
    "latencyUs",
    "connectUs",
    "handlerUs",
    "opUs",
    "outcome",
    "config",
    "intendedTimeStamp",
];

/// Number of columns in a file we write.
pub const COLUMN_COUNT: usize = JMETER_COLUMNS.len() + EXTRA_COLUMNS.len();

/// Column indexes in a file we write (also valid for the first 17 columns
/// of a default JMeter file).
pub mod col {
    /// `timeStamp`
    pub const TIME_STAMP: usize = 0;
    /// `elapsed`
    pub const ELAPSED: usize = 1;
    /// `label`
    pub const LABEL: usize = 2;
    /// `responseCode`
    pub const RESPONSE_CODE: usize = 3;
    /// `responseMessage`
    pub const RESPONSE_MESSAGE: usize = 4;
    /// `threadName`
    pub const THREAD_NAME: usize = 5;
    /// `dataType`
    pub const DATA_TYPE: usize = 6;
    /// `success`
    pub const SUCCESS: usize = 7;
    /// `failureMessage`
    pub const FAILURE_MESSAGE: usize = 8;
    /// `bytes`
    pub const BYTES: usize = 9;
    /// `sentBytes`
    pub const SENT_BYTES: usize = 10;
    /// `grpThreads`
    pub const GRP_THREADS: usize = 11;
    /// `allThreads`
    pub const ALL_THREADS: usize = 12;
    /// `URL`
    pub const URL: usize = 13;
    /// `Latency`
    pub const LATENCY: usize = 14;
    /// `IdleTime`
    pub const IDLE_TIME: usize = 15;
    /// `Connect`
    pub const CONNECT: usize = 16;
    /// `elapsedUs`
    pub const ELAPSED_US: usize = 17;
    /// `latencyUs`
    pub const LATENCY_US: usize = 18;
    /// `connectUs`
    pub const CONNECT_US: usize = 19;
    /// `handlerUs`
    pub const HANDLER_US: usize = 20;
    /// `opUs`
    pub const OP_US: usize = 21;
    /// `outcome`
    pub const OUTCOME: usize = 22;
    /// `config`
    pub const CONFIG: usize = 23;
    /// `intendedTimeStamp`
    pub const INTENDED_TIME_STAMP: usize = 24;
}

/// The header line of a file we write (no line terminator).
pub fn header_line() -> String {
    JMETER_COLUMNS
        .iter()
        .chain(EXTRA_COLUMNS.iter())
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// One request, as one JTL line.
///
/// Millisecond fields follow JMeter; the `*_us` fields are ours and `None`
/// when unknown (or absent from a plain JMeter file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// `timeStamp`: request start, Unix epoch ms.
    pub timestamp_ms: u64,
    /// `elapsed`: round-trip time, ms (until the whole response was read, or the failure).
    pub elapsed_ms: u64,
    /// `label`: the sampler label, e.g. `blur`.
    pub label: String,
    /// `responseCode`: the HTTP status (`"200"`), or for non-HTTP failures
    /// a JMeter-style `Non HTTP response code: ...` text.
    pub response_code: String,
    /// `responseMessage`: the status reason (`"OK"`) or the error text.
    pub response_message: String,
    /// `threadName`: e.g. `vaccel-bench 1-3` (group 1, thread 3).
    pub thread_name: String,
    /// `dataType`: `text` or `bin` (empty when unknown).
    pub data_type: String,
    /// `success`: `true` for a 2xx.
    pub success: bool,
    /// `failureMessage`: empty on success.
    pub failure_message: String,
    /// `bytes`: response bytes received (headers + body, approximately).
    pub bytes: u64,
    /// `sentBytes`: request bytes sent (headers + body, approximately).
    pub sent_bytes: u64,
    /// `grpThreads`: active threads of the group.
    pub grp_threads: u64,
    /// `allThreads`: active threads of all groups.
    pub all_threads: u64,
    /// `URL`.
    pub url: String,
    /// `Latency`: time to first byte, ms.
    pub latency_ms: u64,
    /// `IdleTime`: ms (always 0 from us).
    pub idle_time_ms: u64,
    /// `Connect`: connect time, ms (0 on a reused connection).
    pub connect_ms: u64,
    /// `elapsedUs`: round-trip time, µs.
    pub elapsed_us: Option<u64>,
    /// `latencyUs`: time to first byte, µs.
    pub latency_us: Option<u64>,
    /// `connectUs`: connect time, µs; `None` on a reused connection.
    pub connect_us: Option<u64>,
    /// `handlerUs`: the server's `X-Duration-Seconds`, µs.
    pub handler_us: Option<u64>,
    /// `opUs`: the server's `X-Vaccel-Op-Seconds`, µs.
    pub op_us: Option<u64>,
    /// `outcome`: [`Outcome::as_str`].
    pub outcome: Option<Outcome>,
    /// `config`: the configuration label (`ConfigKey::label`), e.g. `t4-think1s`.
    pub config: String,
    /// `intendedTimeStamp`: open model, the intended send time, Unix epoch ms.
    pub intended_timestamp_ms: Option<u64>,
}

/// The [`Outcome`] named by an `outcome` cell ([`Outcome::as_str`]).
pub fn parse_outcome(cell: &str) -> Option<Outcome> {
    Outcome::ALL.into_iter().find(|o| o.as_str() == cell)
}
