//! A debug build can be told to lose one event in one view (`WARDEN_UNSAFE_SKIP_EVENT=<view>:<n>`:
//! the n-th event this process hands that view), so that the randomized fault run can show its
//! checker catches a view that lost an event. A release build never loses one.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::StoredEvent;

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HANDED: AtomicU64 = AtomicU64::new(0);

fn target() -> Option<&'static (String, u64)> {
    TARGET
        .get_or_init(|| {
            if !cfg!(debug_assertions) {
                return None;
            }
            let value = std::env::var("WARDEN_UNSAFE_SKIP_EVENT").ok()?;
            let (view, nth) = value.split_once(':')?;
            let nth = nth.parse().ok()?;
            tracing::warn!(
                view,
                nth,
                "a view will lose one event on purpose: for tests only"
            );
            Some((view.to_owned(), nth))
        })
        .as_ref()
}

/// `events` as `view` is to apply them: all of them, unless the one it is to lose is among them.
pub(crate) fn handed<'a>(view: &str, events: &'a [StoredEvent]) -> Cow<'a, [StoredEvent]> {
    let Some((lossy, nth)) = target() else {
        return Cow::Borrowed(events);
    };
    if lossy != view || events.is_empty() {
        return Cow::Borrowed(events);
    }
    let before = HANDED.fetch_add(events.len() as u64, Ordering::Relaxed);
    let Some(index) = nth
        .checked_sub(before + 1)
        .filter(|i| *i < events.len() as u64)
    else {
        return Cow::Borrowed(events);
    };
    let mut kept = events.to_vec();
    kept.remove(index as usize);
    Cow::Owned(kept)
}
