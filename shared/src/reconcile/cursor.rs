//! Where a walk stands in the API's list, safe against ties in `date_updated`.
//!
//! Paging by a growing offset skips records: when a record ahead of the offset is updated (it
//! moves to the end of the list) everything after it shifts one place back, and when the API
//! orders records with equal times differently from one request to the next, a tied record
//! can move to a place already passed. So the walk pages by time: each page asks for records
//! updated at or after the last time read, from offset 0, and skips the records at exactly that
//! time that it has settled already (by identity). Re-reading a few tied records costs one
//! record per page; skipping one would lose an event. Only a group of ties larger than a page
//! needs an offset again (best effort, logged): at millisecond resolution that takes more than
//! a page of messages updated in the same millisecond.

use std::collections::HashSet;

#[derive(Debug, Clone)]
pub struct Cursor {
    since_ms: u64,
    /// The identities of the records updated at `since_ms` that were settled already.
    settled_at_since: HashSet<String>,
}

impl Cursor {
    pub fn new(since_ms: u64) -> Self {
        Self { since_ms, settled_at_since: HashSet::new() }
    }

    /// The time the next page starts at.
    pub fn since_ms(&self) -> u64 {
        self.since_ms
    }

    /// The offset the next page asks for: 0, unless the settled ties would fill a whole page.
    pub fn offset(&self, page_limit: usize) -> usize {
        let ties = self.settled_at_since.len();
        if ties >= page_limit {
            tracing::warn!(
                ties,
                page_limit,
                "more tied records than a page: paging them by offset"
            );
            ties
        } else {
            0
        }
    }

    /// Whether the record `identity`, updated at `updated_ms`, was settled already.
    pub fn settled(&self, updated_ms: u64, identity: &str) -> bool {
        updated_ms == self.since_ms && self.settled_at_since.contains(identity)
    }

    /// Records that the record `identity`, updated at `updated_ms`, is settled.
    pub fn passed(&mut self, updated_ms: u64, identity: String) {
        if updated_ms > self.since_ms {
            self.since_ms = updated_ms;
            self.settled_at_since.clear();
        }
        if updated_ms == self.since_ms {
            self.settled_at_since.insert(identity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_settled_are_skipped_and_a_later_time_starts_afresh() {
        let mut cursor = Cursor::new(100);
        cursor.passed(100, "a".into());
        cursor.passed(100, "b".into());
        assert!(cursor.settled(100, "a") && !cursor.settled(100, "c"));
        assert_eq!((cursor.since_ms(), cursor.offset(10)), (100, 0));
        cursor.passed(105, "c".into());
        assert!(!cursor.settled(100, "a"), "an earlier time is no longer the cursor's");
        assert!(cursor.settled(105, "c"));
        assert_eq!(cursor.since_ms(), 105);
        for i in 0..10 {
            cursor.passed(105, format!("t{i}"));
        }
        assert_eq!(cursor.offset(10), 11, "a page of ties: by offset");
    }
}
