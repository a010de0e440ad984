//! The UI's routes: one module per screen of SPEC §18.

pub mod audit;
pub mod data;
pub mod entities;
pub mod login;
pub mod policies;
pub mod tenants;
pub mod versions;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use metaengine_server::SharedState;

use crate::page::{self, Layout, Shown};
use crate::{Ctx, assets, signed};

/// Every UI route over `ctx`, behind the CSRF check and the security headers.
pub fn router(ctx: Ctx) -> Router<SharedState> {
    let entity = "/_/entities/{entity}";
    let version = "/_/entities/{entity}/versions/{version}";
    Router::new()
        // Someone who opens the server's address in a browser meets the UI.
        .route("/", get(|| async { Redirect::to("/_/") }))
        .route("/_", get(|| async { Redirect::permanent("/_/") }))
        .route("/_/", get(|| async { Redirect::to("/_/entities") }))
        .route("/_/static/{name}", get(assets::serve))
        .route("/_/login", get(login::show).post(login::token))
        .route("/_/logout", post(login::logout))
        .route("/_/entities", get(entities::list).post(entities::create))
        .route(entity, get(entities::show))
        .route(&format!("{entity}/delete"), post(entities::delete))
        .route(&format!("{entity}/prune"), post(entities::prune))
        .route(
            &format!("{entity}/versions"),
            post(entities::create_version),
        )
        .route(version, get(versions::show))
        .route(&format!("{version}/save"), post(versions::save))
        .route(&format!("{version}/validate"), post(versions::validate))
        .route(&format!("{version}/fields"), post(versions::add_field))
        .route(
            &format!("{version}/fields/{{field}}/delete"),
            post(versions::remove_field),
        )
        .route(&format!("{version}/activate"), post(versions::activate))
        .route(&format!("{version}/deactivate"), post(versions::deactivate))
        .route(&format!("{version}/delete"), post(versions::delete))
        .route("/_/data", get(data::index))
        .route("/_/data/{entity}", get(data::grid))
        .route("/_/data/{entity}/export.csv", get(data::export))
        .route("/_/data/{entity}/new", get(data::new).post(data::create))
        .route("/_/data/{entity}/{id}", get(data::edit).post(data::update))
        .route("/_/data/{entity}/{id}/delete", post(data::delete))
        .route("/_/policies", get(policies::index))
        .route("/_/policies/{entity}", get(policies::entity))
        .route("/_/audit", get(audit::list))
        .route("/_/tenants", get(tenants::list).post(tenants::create))
        .route("/_/tenants/{id}/status", post(tenants::status))
        .route("/_/{*rest}", get(not_found))
        .layer(middleware::from_fn_with_state(
            ctx.clone(),
            signed::csrf_guard,
        ))
        .layer(middleware::from_fn(page::security_headers))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(ctx)
}

async fn not_found() -> Response {
    let error = Shown {
        status: 404,
        detail: "There is no such page.".to_owned(),
        problems: Vec::new(),
    };
    let mut r = page::error_page(Layout::anonymous(String::new()), "Not found", error);
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.into_response()
}
