//! The screens, embedded in the binary from `web/` (air-gapped rooms fetch
//! nothing from outside). Debug builds read `web/` from disk, so front-end
//! edits need no rebuild.

use super::routes::{get, Route, Rule, ASSETS};
use actix_web::{get, http::header, web, HttpResponse, Responder};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
#[exclude = "screenshots/*"]
struct Assets;

pub fn serve(path: &str) -> HttpResponse {
    match Assets::get(path) {
        Some(file) => {
            let mime = file.metadata.mimetype();
            // HTML is revalidated so a new binary's screens load at once; other
            // assets are cached briefly and revalidated by ETag.
            let cache = if mime.starts_with("text/html") {
                "no-cache"
            } else {
                "public, max-age=300"
            };
            let etag = format!(
                "\"{}\"",
                file.metadata
                    .sha256_hash()
                    .iter()
                    .take(8)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
            HttpResponse::Ok()
                .content_type(mime)
                .insert_header((header::CACHE_CONTROL, cache))
                .insert_header((header::ETAG, etag))
                .body(file.data.into_owned())
        }
        None => HttpResponse::NotFound()
            .json(serde_json::json!({ "error": format!("no asset {path}"), "status": 404 })),
    }
}

#[get("/")]
async fn index() -> impl Responder {
    serve("index.html")
}

#[get("/{path:.*\\.(js|css|html|svg|json|png|woff2|ico)}")]
async fn asset(path: web::Path<String>) -> impl Responder {
    serve(&path.into_inner())
}

/// The screens' files are public (they hold no data; `/` is the wall's
/// area). Last in the table: the pattern matches many paths.
pub const ROUTES: &[Route] = &[get(ASSETS, Rule::Public)];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(index).service(asset);
}
