mod aggregate;
pub mod archival;
mod commands;
mod errors;
mod events;
#[cfg(test)]
mod tests;

pub use aggregate::{Archival, Workspace};
pub use commands::WorkspaceCommand;
pub use errors::WorkspaceError;
pub use events::{Role, WorkspaceEvent};

use std::sync::Arc;

use crate::shared::Clock;

pub struct WorkspaceServices {
    pub clock: Arc<dyn Clock>,
}
