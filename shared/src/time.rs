//! Times as the code keeps them, milliseconds since the epoch, and as text: RFC 3339 in UTC with
//! milliseconds, as events carry `received_at` and Sendblue's messages API takes and gives times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The moment to stop starting new work: `margin` before the invocation's deadline
/// (`deadline_ms`, epoch milliseconds), so that what was done is saved before Lambda ends it.
pub fn stop_before(deadline_ms: u64, margin: Duration) -> tokio::time::Instant {
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
    tokio::time::Instant::now() + left.saturating_sub(margin)
}

/// `epoch_ms` as RFC 3339 in UTC with milliseconds (`2026-11-28T09:00:00.000Z`).
pub fn iso_ms(epoch_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(epoch_ms)).to_string()
}

/// An RFC 3339 time (a space for the `T` and no zone, read as UTC, accepted too) in
/// milliseconds since the epoch; `None` for anything else or a time before 1970.
pub fn parse_iso_ms(text: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_milliseconds_round_trip() {
        let ms = 1_764_323_400_123;
        assert_eq!(iso_ms(ms), "2025-11-28T09:50:00.123Z");
        assert_eq!(parse_iso_ms(&iso_ms(ms)), Some(ms));
        assert_eq!(parse_iso_ms("2025-11-28T09:50:00Z"), Some(ms - 123));
        assert_eq!(parse_iso_ms("yesterday"), None);
        assert_eq!(parse_iso_ms("1969-12-31T23:59:59Z"), None);
    }
}
