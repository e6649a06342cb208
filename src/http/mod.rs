pub mod error;
pub mod extractors;
pub mod openapi;
pub mod routes;
