//! Which bytes of a segment file have been checked whole (CRC included) since the segment was
//! opened: one range, so reads check only what lies outside it and slices cover only what
//! lies inside.

use std::ops::Range;
use std::sync::Mutex;

/// One checked range of the file. When a read checks bytes apart from it, the range that
/// reaches further towards the end is kept: that is where consumers read and appends extend.
#[derive(Debug, Default)]
pub(crate) struct Verified(Mutex<Range<u64>>);

impl Verified {
    pub(crate) fn get(&self) -> Range<u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether every byte of `range` was checked.
    pub(crate) fn covers(&self, range: &Range<u64>) -> bool {
        let verified = self.get();
        verified.start <= range.start && range.end <= verified.end
    }

    /// Records that the batches in `checked` were checked.
    pub(crate) fn add(&self, checked: Range<u64>) {
        let mut verified = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *verified = merged(&verified, checked);
    }

    /// [`Self::add`] with the segment held exclusively (appends, recovery).
    pub(crate) fn add_mut(&mut self, checked: Range<u64>) {
        let verified = self.0.get_mut().unwrap_or_else(|e| e.into_inner());
        *verified = merged(verified, checked);
    }

    /// Nothing checked (the file is about to be read afresh).
    pub(crate) fn clear_mut(&mut self) {
        *self.0.get_mut().unwrap_or_else(|e| e.into_inner()) = 0..0;
    }
}

fn merged(verified: &Range<u64>, checked: Range<u64>) -> Range<u64> {
    if checked.is_empty() {
        verified.clone()
    } else if verified.is_empty() {
        checked
    } else if checked.start <= verified.end && verified.start <= checked.end {
        verified.start.min(checked.start)..verified.end.max(checked.end)
    } else if checked.end > verified.end {
        checked
    } else {
        verified.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::merged;

    #[test]
    fn ranges_join_when_they_touch_and_the_later_one_wins_otherwise() {
        assert_eq!(merged(&(0..0), 10..20), 10..20);
        assert_eq!(merged(&(10..20), 20..30), 10..30);
        assert_eq!(merged(&(10..20), 0..10), 0..20);
        assert_eq!(merged(&(10..20), 12..15), 10..20);
        assert_eq!(merged(&(10..20), 30..40), 30..40);
        assert_eq!(merged(&(30..40), 10..20), 30..40);
        assert_eq!(merged(&(10..20), 5..5), 10..20);
    }
}
