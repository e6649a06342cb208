use chrono::{DateTime, Utc};

/// The only way the domain learns the time. Production reads the system clock; tests move a
/// clock of their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}
