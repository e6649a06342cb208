use serde::{Deserialize, Serialize};

/// What an API access token may do. A session may do everything its account may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "write")]
    Write,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "events:read")]
    EventsRead,
    #[serde(rename = "introspect")]
    Introspect,
    #[serde(rename = "admin")]
    Admin,
    /// For data services: read the purge schedule and acknowledge purges.
    #[serde(rename = "archival")]
    Archival,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::Read,
        Scope::Write,
        Scope::AuditRead,
        Scope::EventsRead,
        Scope::Introspect,
        Scope::Admin,
        Scope::Archival,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::AuditRead => "audit:read",
            Self::EventsRead => "events:read",
            Self::Introspect => "introspect",
            Self::Admin => "admin",
            Self::Archival => "archival",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}
