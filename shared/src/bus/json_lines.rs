//! The local sink: each event as one JSON line, as `aws events put-events` would take it.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{EventSink, ForwardError, OutgoingEvent};

#[derive(Debug)]
pub struct JsonLinesSink<W> {
    out: Mutex<W>,
}

impl JsonLinesSink<std::io::Stdout> {
    /// Prints to stdout; logs go to stderr, so the two never interleave within a line.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }
}

impl<W: Write + Send> JsonLinesSink<W> {
    pub fn new(out: W) -> Self {
        Self { out: Mutex::new(out) }
    }

    /// Runs `f` on the writer, e.g. to read a `Vec<u8>` in a test.
    pub fn inspect<T>(&self, f: impl FnOnce(&W) -> T) -> T {
        f(&self.out.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Line<'a> {
    source: &'a str,
    detail_type: &'a str,
    detail: &'a RawValue,
}

impl<W: Write + Send> JsonLinesSink<W> {
    fn write(&self, event: &OutgoingEvent<'_>) -> Result<(), ForwardError> {
        let detail: &RawValue = serde_json::from_str(event.detail)
            .map_err(|e| ForwardError(format!("detail is not JSON: {e}")))?;
        let mut line = serde_json::to_vec(&Line {
            source: event.source,
            detail_type: event.detail_type,
            detail,
        })
        .map_err(|e| ForwardError(e.to_string()))?;
        // The body is spliced in as sent and may be pretty-printed. JSON strings cannot hold a
        // raw line break, so every one is white space between tokens: flatten it to a space.
        for byte in &mut line {
            if matches!(*byte, b'\n' | b'\r') {
                *byte = b' ';
            }
        }
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        out.write_all(&line)
            .and_then(|()| out.flush())
            .map_err(|e| ForwardError(format!("writing the event: {e}")))
    }
}

impl<W: Write + Send> EventSink for JsonLinesSink<W> {
    async fn put_batch(
        &self,
        events: &[OutgoingEvent<'_>],
    ) -> Result<Vec<Result<(), ForwardError>>, ForwardError> {
        Ok(events.iter().map(|event| self.write(event)).collect())
    }
}
