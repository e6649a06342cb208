pub mod access_requests;
pub mod archival_schedule;
pub mod audit_chain;
pub mod audit_log;
pub mod credentials;
pub mod session_history;
pub mod workspaces;
