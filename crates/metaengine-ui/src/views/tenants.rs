//! Tenants: list, create, suspend, reactivate (platform admins; the service refuses others).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use metaengine_store::TenantRow;

use crate::Ctx;
use crate::form::{FormData, Query};
use crate::page::{self, Layout, Shown, shown};
use crate::signed::Signed;
use metaengine_server::extract::Path;

#[derive(Template)]
#[template(path = "tenants.html")]
struct TenantsPage {
    layout: Layout,
    tenants: Vec<TenantRow>,
    platform: String,
    id: String,
    name: String,
    error: Option<Shown>,
}

async fn tenants_page(
    ctx: &Ctx,
    signed: &Signed,
    notice: Option<&str>,
    form: Option<&FormData>,
    error: Option<Shown>,
) -> Response {
    let layout = signed.layout("tenants").with_notice(notice);
    let tenants = match ctx.app.tenants.list(&signed.actor).await {
        Ok(t) => t,
        Err(e) => return page::error_page(layout, "Tenants", shown(e)),
    };
    let status = page::status_of(error.as_ref());
    let field = |k: &str| form.and_then(|f| f.get(k)).unwrap_or("").to_owned();
    page::html(
        status,
        &TenantsPage {
            layout,
            tenants,
            platform: ctx.app.registry.access().platform_tenant.clone(),
            id: field("id"),
            name: field("name"),
            error,
        },
    )
}

/// `GET /_/tenants`.
pub async fn list(State(ctx): State<Ctx>, signed: Signed, Query(q): Query) -> Response {
    tenants_page(&ctx, &signed, q.get("notice"), None, None).await
}

/// `POST /_/tenants` `id`, `name`.
pub async fn create(State(ctx): State<Ctx>, signed: Signed, form: FormData) -> Response {
    let id = form.get("id").unwrap_or("").trim();
    let name = form.get("name").unwrap_or("").trim();
    match ctx.app.tenants.create(&signed.actor, id, name).await {
        Ok(_) => page::see_other("/_/tenants?notice=tenant-created"),
        Err(e) => tenants_page(&ctx, &signed, None, Some(&form), Some(shown(e))).await,
    }
}

/// `POST /_/tenants/{id}/status` `status` (`active` or `suspended`).
pub async fn status(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    form: FormData,
) -> Response {
    match ctx
        .app
        .tenants
        .update(&signed.actor, &id, None, form.text("status"))
        .await
    {
        Ok(_) => page::see_other("/_/tenants?notice=tenant-updated"),
        Err(e) => tenants_page(&ctx, &signed, None, None, Some(shown(e))).await,
    }
}
