//! Rate-limited logging: a flood of the same event (refused sockets, say) must not flood the
//! log. [`RateLimit`] lets one report through per interval and counts the rest, so the next
//! line can say how many were not logged.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Lets one event through per `every`, counting those held back.
pub(crate) struct RateLimit {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    pub(crate) fn new(every: Duration) -> Self {
        RateLimit {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(held back since the last one)` when this event may be reported.
    pub(crate) fn hit(&self) -> Option<u64> {
        let mut state = self.state.lock();
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.every => {
                state.1 += 1;
                None
            }
            _ => {
                let held_back = std::mem::take(&mut state.1);
                state.0 = Some(now);
                Some(held_back)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_limit_lets_one_through_and_counts_the_rest() {
        let limit = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(limit.hit(), Some(0));
        assert_eq!(limit.hit(), None);
        assert_eq!(limit.hit(), None);
        let limit = RateLimit::new(Duration::ZERO);
        assert_eq!(limit.hit(), Some(0));
        assert_eq!(limit.hit(), Some(0));
    }
}
