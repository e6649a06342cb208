pub(crate) mod checkpoint;
pub mod progress;
pub(crate) mod projector;
pub(crate) mod reactor;
pub mod replay;
pub(crate) mod runner;
pub(crate) mod sabotage;
pub(crate) mod together;
