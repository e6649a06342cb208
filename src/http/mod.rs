pub mod error;
pub mod extractors;
pub mod openapi;
pub mod routes;
pub mod server;
