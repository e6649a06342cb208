pub mod error;
pub mod extractors;
pub mod openapi;
pub mod pages;
pub mod routes;
pub mod server;
