//! How long work (a replay, a chain verification) tells how far it has come. The work says
//! `done` of `total` events for a stage; how that is shown (a bar on a terminal, JSON lines in a
//! log) is the caller's.

/// Told how far long work has come.
pub trait Progress: Send + Sync {
    /// `done` of `total` events of `stage` (for example `verify`, or `replay session_history_v1`).
    fn update(&self, stage: &str, done: u64, total: u64);

    /// The stage is over.
    fn finish(&self, stage: &str) {
        let _ = stage;
    }
}

/// Progress nobody watches.
pub struct Silent;

impl Progress for Silent {
    fn update(&self, _: &str, _: u64, _: u64) {}
}
