pub mod access_requests;
pub mod archival_schedule;
pub mod audit_log;
pub mod credentials;
pub mod events;
pub mod session_history;
pub mod workspaces;
