//! Prometheus metrics: request counts and latencies, command outcomes, projector health and lag.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use sqlx::PgPool;
use warden_projections::ProjectorStatus;

use crate::app::credentials::cache::CacheStats;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    commands: IntCounterVec,
    barrier: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("warden_http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "warden_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let commands = IntCounterVec::new(
            Opts::new("warden_commands_total", "commands handled by aggregates"),
            &["aggregate", "outcome"],
        )
        .expect("valid metric");
        let barrier = HistogramVec::new(
            HistogramOpts::new(
                "warden_revocation_barrier_seconds",
                "how long revocations waited for every process to apply them",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0,
            ]),
            &["outcome"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(barrier.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(commands.clone()),
        ] {
            registry.register(collector).expect("registered once");
        }
        Self {
            registry,
            requests,
            latency,
            commands,
            barrier,
        }
    }

    pub fn barrier(&self, outcome: &str, seconds: f64) {
        self.barrier.with_label_values(&[outcome]).observe(seconds);
    }

    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    pub fn command(&self, aggregate: &str, outcome: &str) {
        self.commands.with_label_values(&[aggregate, outcome]).inc();
    }

    /// The text exposition, with projector gauges read at scrape time.
    pub async fn render(
        &self,
        pool: &PgPool,
        projectors: &[ProjectorStatus],
        held_waits: u64,
        credentials: &CacheStats,
    ) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        let mut text = String::from_utf8(buffer).unwrap_or_default();
        credential_cache(&mut text, credentials);
        text.push_str("# HELP warden_projector_failing 1 while a projector is failing\n");
        text.push_str("# TYPE warden_projector_failing gauge\n");
        for p in projectors {
            text.push_str(&format!(
                "warden_projector_failing{{projector=\"{}\"}} {}\n",
                p.name,
                u8::from(p.failing)
            ));
        }
        text.push_str("# HELP warden_projector_failures_total failed projector passes\n");
        text.push_str("# TYPE warden_projector_failures_total counter\n");
        for p in projectors {
            text.push_str(&format!(
                "warden_projector_failures_total{{projector=\"{}\"}} {}\n",
                p.name, p.failures
            ));
        }
        text.push_str("# HELP warden_projector_applied_total events applied by this process\n");
        text.push_str("# TYPE warden_projector_applied_total counter\n");
        for p in projectors {
            text.push_str(&format!(
                "warden_projector_applied_total{{projector=\"{}\"}} {}\n",
                p.name, p.applied
            ));
        }
        horizon(&mut text, pool, held_waits).await;
        // Lag: events in the log beyond each projector's checkpoint (any type, so an upper bound).
        let lag: Result<Vec<(String, i64)>, _> = sqlx::query_as(
            "SELECT c.name, (SELECT count(*) FROM events e
                             WHERE (e.transaction_id, e.global_position)
                                 > (c.transaction_id, c.global_position))
             FROM projector_checkpoints c ORDER BY c.name",
        )
        .fetch_all(pool)
        .await;
        if let Ok(rows) = lag {
            text.push_str(
                "# HELP warden_projector_lag_events events stored beyond the checkpoint\n",
            );
            text.push_str("# TYPE warden_projector_lag_events gauge\n");
            for (name, lag) in rows {
                text.push_str(&format!(
                    "warden_projector_lag_events{{projector=\"{name}\"}} {lag}\n"
                ));
            }
        }
        text
    }
}

/// What holds the views back: the oldest writing transaction anywhere on the server (any
/// database: the horizon is the cluster's), and the answers that stopped waiting for the views
/// because of it (docs/operations.md, "A long transaction elsewhere").
async fn horizon(text: &mut String, pool: &PgPool, held_waits: u64) {
    text.push_str(&format!(
        "# HELP warden_views_waits_cut_short_total answers given before their views because a long transaction held the horizon
         # TYPE warden_views_waits_cut_short_total counter
         warden_views_waits_cut_short_total {held_waits}
"
    ));
    // Other roles' transactions show their start only to a role with pg_read_all_stats.
    let oldest: Result<Option<f64>, _> = sqlx::query_scalar(
        "SELECT extract(epoch FROM max(now() - xact_start))::float8 FROM pg_stat_activity
         WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
    )
    .fetch_one(pool)
    .await;
    if let Ok(oldest) = oldest {
        text.push_str(&format!(
            "# HELP warden_oldest_writing_transaction_seconds age of the oldest transaction holding an xid on the server: the views and the stream wait for it
             # TYPE warden_oldest_writing_transaction_seconds gauge
             warden_oldest_writing_transaction_seconds {:.3}
",
            oldest.unwrap_or(0.0)
        ));
    }
}

/// The credential cache's counters, read at scrape time.
fn credential_cache(text: &mut String, stats: &CacheStats) {
    let counters = [
        (
            "hits_total",
            "credential checks answered from memory",
            stats.hits,
        ),
        (
            "misses_total",
            "credential checks built from the aggregates",
            stats.misses,
        ),
        (
            "evictions_total",
            "entries evicted by the size bound or idleness",
            stats.evictions,
        ),
        (
            "invalidations_total",
            "accounts whose entries the log invalidated",
            stats.invalidations,
        ),
        (
            "clears_total",
            "times the whole cache was dropped",
            stats.clears,
        ),
    ];
    for (name, help, value) in counters {
        text.push_str(&format!(
            "# HELP warden_credential_cache_{name} {help}\n\
             # TYPE warden_credential_cache_{name} counter\n\
             warden_credential_cache_{name} {value}\n"
        ));
    }
    text.push_str(&format!(
        "# HELP warden_credential_cache_entries credentials cached in this process\n\
         # TYPE warden_credential_cache_entries gauge\n\
         warden_credential_cache_entries {}\n\
         # HELP warden_credential_cache_trusted 1 while this process's lease lets it answer from memory\n\
         # TYPE warden_credential_cache_trusted gauge\n\
         warden_credential_cache_trusted {}\n",
        stats.entries,
        u8::from(stats.trusted)
    ));
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
