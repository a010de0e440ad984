//! The UI's static files, embedded in the binary and served under content-hashed names
//! (`/_/static/ui.<hash>.css`) with a year-long `immutable` cache: a new build changes the name,
//! so a browser never holds a stale copy and never asks twice.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The name it is served under (with its content hash).
    pub name: String,
    /// The URL path it is served at.
    pub path: String,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

impl Asset {
    fn new(stem: &str, ext: &str, content_type: &'static str, body: &'static [u8]) -> Self {
        let digest = Sha256::digest(body);
        let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let name = format!("{stem}.{hash}.{ext}");
        Self {
            path: format!("/_/static/{name}"),
            name,
            content_type,
            body,
        }
    }
}

/// The stylesheet.
pub static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "ui",
        "css",
        "text/css; charset=utf-8",
        include_bytes!("../static/ui.css"),
    )
});

/// The script (theme switch, live rows, `data-confirm` prompts).
pub static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "ui",
        "js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/ui.js"),
    )
});

/// Every embedded file.
pub fn all() -> [&'static Asset; 2] {
    [&*CSS, &*JS]
}

/// `GET /_/static/{name}`.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    match all().into_iter().find(|a| a.name == name) {
        Some(asset) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
