//! Work a request starts and does not wait for (so that its answer tells nothing about what the
//! work found), counted so that tests and a shutdown can wait for it to finish, and bounded so
//! that a flood of such requests while the database is slow cannot pile up without end: when the
//! bound is reached the request is refused (503 `busy`) whatever it was about, so the refusal
//! tells nothing either.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::problem::ProblemCode;
use super::AppError;

/// How much background work one process takes on before refusing more.
const IN_FLIGHT: usize = 256;

#[derive(Clone)]
pub struct Background {
    running: Arc<(AtomicUsize, Notify)>,
    limit: usize,
}

impl Default for Background {
    fn default() -> Self {
        Self::with_limit(IN_FLIGHT)
    }
}

impl Background {
    pub fn with_limit(limit: usize) -> Self {
        Self {
            running: Arc::default(),
            limit: limit.max(1),
        }
    }

    /// Starts `work`, or refuses when as much is already running as the bound allows.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) -> Result<(), AppError> {
        let running = self.running.clone();
        let claimed = running
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            });
        if claimed.is_err() {
            tracing::warn!(
                limit = self.limit,
                "background work refused: the bound is reached"
            );
            return Err(AppError::new(ProblemCode::Busy));
        }
        tokio::spawn(async move {
            work.await;
            if running.0.fetch_sub(1, Ordering::AcqRel) == 1 {
                running.1.notify_waiters();
            }
        });
        Ok(())
    }

    /// Returns once no work is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.running.1.notified();
            if self.running.0.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn work_beyond_the_bound_is_refused_until_some_has_finished() {
        let background = Background::with_limit(2);
        let (first_done, first) = oneshot::channel::<()>();
        let (second_done, second) = oneshot::channel::<()>();
        for gate in [first, second] {
            background
                .spawn(async move {
                    let _ = gate.await;
                })
                .expect("within the bound");
        }
        let refused = background.spawn(async {});
        assert!(matches!(refused, Err(e) if e.code() == ProblemCode::Busy));

        first_done.send(()).expect("sent");
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while background.spawn(async {}).is_err() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("room again once one finished");
        second_done.send(()).expect("sent");
        tokio::time::timeout(std::time::Duration::from_secs(5), background.idle())
            .await
            .expect("idle");
    }
}
