//! Personal data as a reader sees it: opened with its owner's key, or erased once that key was
//! destroyed. One type, so "erased" is decided and spelled in one place.

use warden_aggregates::shared::SealedText;

use crate::adapters::sealing::DataKey;

#[derive(Clone, PartialEq, Eq)]
pub enum Personal {
    Open(String),
    /// The owner's key is gone (crypto-shredded): nobody can open the value any more.
    Erased,
}

/// Never the opened value: a `{:?}` may end up in a log line.
impl std::fmt::Debug for Personal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open(_) => f.write_str("Open([personal])"),
            Self::Erased => f.write_str("Erased"),
        }
    }
}

impl Personal {
    /// How an erased value reads everywhere: in responses, the audit log and the stream.
    pub const ERASED: &'static str = "erased";

    /// Opens `sealed` with the first of `keys` that can.
    pub fn open<'k>(keys: impl IntoIterator<Item = &'k DataKey>, sealed: &SealedText) -> Self {
        keys.into_iter()
            .find_map(|key| key.open(sealed).ok())
            .map_or(Self::Erased, Self::Open)
    }

    /// A sealed value kept as text in a view.
    pub fn open_text(key: Option<&DataKey>, sealed: String) -> Self {
        Self::open(key, &SealedText(sealed))
    }

    pub fn is_erased(&self) -> bool {
        matches!(self, Self::Erased)
    }

    pub fn text(&self) -> &str {
        match self {
            Self::Open(text) => text,
            Self::Erased => Self::ERASED,
        }
    }

    pub fn into_text(self) -> String {
        match self {
            Self::Open(text) => text,
            Self::Erased => Self::ERASED.to_string(),
        }
    }
}

impl From<Personal> for String {
    fn from(value: Personal) -> Self {
        value.into_text()
    }
}
