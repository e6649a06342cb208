//! The pages' stylesheet and their one script, compiled into the binary and served by Warden
//! itself (the pages' Content-Security-Policy allows nothing from elsewhere).

use actix_web::http::header;
use actix_web::{get, HttpResponse};

const STYLESHEET: &str = include_str!("assets/warden.css");
const SCRIPT: &str = include_str!("assets/account.js");

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

#[get("/account/assets/warden.css")]
pub async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLESHEET)
}

#[get("/account/assets/account.js")]
pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}
