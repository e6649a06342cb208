//! How `warden replay` and `warden verify` show their progress: a bar with rate and time left on
//! a terminal, and JSON lines on standard error elsewhere (CI, operators' logs), at most one a
//! second per stage and always one at its end.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;
use warden_projections::Progress;

/// How often a stage's JSON line is written at most.
const EVERY: Duration = Duration::from_secs(1);

pub struct Reporter {
    terminal: bool,
    bars: MultiProgress,
    stages: Mutex<HashMap<String, Stage>>,
}

struct Stage {
    started: Instant,
    written: Option<Instant>,
    bar: Option<ProgressBar>,
}

impl Reporter {
    /// A bar when standard error is a terminal, JSON lines when it is not.
    pub fn on_stderr() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            bars: MultiProgress::new(),
            stages: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, stage: &str, total: u64) -> ProgressBar {
        let style = ProgressStyle::with_template(
            "{msg:32} [{bar:30}] {human_pos}/{human_len} {per_sec} · {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = self.bars.add(ProgressBar::new(total));
        bar.set_style(style);
        bar.set_message(stage.to_string());
        bar
    }
}

/// A stage's progress as one JSON line: what, how far, how fast, how long still.
fn line(stage: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let rate = done as f64 / seconds;
    let left = (rate > 0.0).then(|| (total.saturating_sub(done)) as f64 / rate);
    json!({
        "stage": stage,
        "done": done,
        "total": total,
        "events_per_second": rate.round(),
        "seconds_left": left.map(|s| (s * 10.0).round() / 10.0),
    })
    .to_string()
}

impl Progress for Reporter {
    fn update(&self, stage: &str, done: u64, total: u64) {
        let Ok(mut stages) = self.stages.lock() else {
            return;
        };
        let entry = stages.entry(stage.to_string()).or_insert_with(|| Stage {
            started: Instant::now(),
            written: None,
            bar: None,
        });
        if self.terminal {
            let bar = entry.bar.get_or_insert_with(|| self.bar(stage, total));
            bar.set_length(total);
            bar.set_position(done);
            return;
        }
        let due = entry.written.is_none_or(|at| at.elapsed() >= EVERY);
        if due || done >= total {
            eprintln!("{}", line(stage, done, total, entry.started.elapsed()));
            entry.written = Some(Instant::now());
        }
    }

    fn finish(&self, stage: &str) {
        if let Ok(mut stages) = self.stages.lock() {
            if let Some(bar) = stages.get_mut(stage).and_then(|s| s.bar.take()) {
                bar.finish();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_how_far_how_fast_and_how_long_still() {
        let text = line("verify", 250, 1000, Duration::from_secs(5));
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["stage"], "verify");
        assert_eq!(value["done"], 250);
        assert_eq!(value["events_per_second"], 50.0);
        assert_eq!(value["seconds_left"], 15.0);
        let nothing_yet = line("verify", 0, 1000, Duration::from_secs(1));
        assert!(
            nothing_yet.contains("\"seconds_left\":null"),
            "{nothing_yet}"
        );
    }
}
