//! The P2 baseline: an actix-web handler that returns a small JSON body, built from the same
//! dependency set as Warden and served the same way (HttpServer, one worker per core).
//!
//! `bare_actix <address>`

use actix_web::{get, web, App, HttpResponse, HttpServer};
use serde_json::json;

#[get("/v1/me")]
async fn me() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "id": "01a20151-b7bf-7084-a8d7-3da5147a0cd3",
        "email": "ada@example.com",
        "display_name": "Ada",
        "is_admin": false,
        "mfa": { "methods": [], "totp_pending": false, "recovery_codes_remaining": 0 }
    }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    HttpServer::new(|| {
        App::new()
            .service(me)
            .default_service(web::to(HttpResponse::NotFound))
    })
    .bind(address)?
    .run()
    .await
}
