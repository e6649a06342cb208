//! Work a request starts and does not wait for (so that its answer tells nothing about what the
//! work found), counted so that tests and a shutdown can wait for it to finish.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Background {
    running: Arc<(AtomicUsize, Notify)>,
}

impl Background {
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let running = self.running.clone();
        running.0.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            work.await;
            if running.0.fetch_sub(1, Ordering::AcqRel) == 1 {
                running.1.notify_waiters();
            }
        });
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
