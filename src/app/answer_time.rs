//! How long a refusal for an existing account takes, so that the same refusal for an address
//! without an account can take as long (docs/adr/0018): a wrong password for a known address
//! costs its lookup, its command and its append on top of the one argon2 both paths spend.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many recent answers the median is taken over.
const KEPT: usize = 101;

#[derive(Clone, Default)]
pub struct AnswerTimes {
    recent: Arc<Mutex<VecDeque<Duration>>>,
}

impl AnswerTimes {
    /// A refusal for an existing account, started at `started`, is being answered now.
    pub fn record(&self, started: Instant) {
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == KEPT {
                recent.pop_front();
            }
            recent.push_back(started.elapsed());
        }
    }

    /// The median of the recent answers, once there are any.
    pub fn median(&self) -> Option<Duration> {
        let recent = self.recent.lock().ok()?;
        let mut sorted: Vec<Duration> = recent.iter().copied().collect();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied()
    }

    /// Waits until a refusal started at `started` has taken as long as the recent median.
    pub async fn pad(&self, started: Instant) {
        if let Some(median) = self.median() {
            tokio::time::sleep(median.saturating_sub(started.elapsed())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_of_the_recent_answers_only() {
        let times = AnswerTimes::default();
        assert_eq!(times.median(), None);
        let now = Instant::now();
        for _ in 0..KEPT {
            times.record(now);
        }
        let early = times.median().expect("a median");
        std::thread::sleep(Duration::from_millis(20));
        for _ in 0..KEPT {
            times.record(now);
        }
        let late = times.median().expect("a median");
        assert!(
            late >= early + Duration::from_millis(20),
            "{early:?} then {late:?}"
        );
        assert_eq!(times.recent.lock().expect("lock").len(), KEPT);
    }
}
