//! The entities: list, create, an entity's page with its versions, delete (with `force` and a
//! typed confirmation), prune hidden columns.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use metaengine_store::{EntityRow, PageRequest, VersionRow};

use crate::Ctx;
use crate::form::{FormData, Query};
use crate::page::{self, Layout, Shown, enc, shown};
use crate::signed::Signed;
use metaengine_server::extract::Path;

/// The most entities one page lists.
const MAX_ENTITIES: u32 = 1000;

#[derive(Template)]
#[template(path = "entities.html")]
struct EntitiesPage {
    layout: Layout,
    entities: Vec<EntityRow>,
    name: String,
    description: String,
    error: Option<Shown>,
}

async fn list_page(
    ctx: &Ctx,
    signed: &Signed,
    notice: Option<&str>,
    form: Option<(&FormData, Shown)>,
) -> Response {
    let layout = signed.layout("entities").with_notice(notice);
    let entities = match ctx
        .app
        .registry
        .list_entities(&signed.actor, PageRequest::new(1, MAX_ENTITIES))
        .await
    {
        Ok(page) => page.data,
        Err(e) => return page::error_page(layout, "Entities", shown(e)),
    };
    let (status, name, description, error) = match form {
        Some((f, e)) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            f.get("name").unwrap_or("").to_owned(),
            f.get("description").unwrap_or("").to_owned(),
            Some(e),
        ),
        None => (StatusCode::OK, String::new(), String::new(), None),
    };
    page::html(
        status,
        &EntitiesPage {
            layout,
            entities,
            name,
            description,
            error,
        },
    )
}

/// `GET /_/entities`.
pub async fn list(State(ctx): State<Ctx>, signed: Signed, Query(q): Query) -> Response {
    list_page(&ctx, &signed, q.get("notice"), None).await
}

/// `POST /_/entities`: creates an entity (422 at `/name` shown at the name field).
pub async fn create(State(ctx): State<Ctx>, signed: Signed, form: FormData) -> Response {
    let name = form.get("name").unwrap_or("").trim();
    match ctx
        .app
        .registry
        .create_entity(&signed.actor, name, form.text("description"))
        .await
    {
        Ok(row) => page::see_other(&format!(
            "/_/entities/{}?notice=entity-created",
            enc(&row.name)
        )),
        Err(e) => list_page(&ctx, &signed, None, Some((&form, shown(e)))).await,
    }
}

/// A version's state as the entity page shows it.
pub struct VersionLine {
    /// The version row.
    pub row: VersionRow,
    /// `active`, `was active` or `never active`.
    pub state: &'static str,
    /// The badge's class: `active`, `was-active` or `never-active`.
    pub class: &'static str,
}

#[derive(Template)]
#[template(path = "entity.html")]
struct EntityPage {
    layout: Layout,
    entity: EntityRow,
    versions: Vec<VersionLine>,
    hidden: Vec<String>,
    suggested: String,
    error: Option<Shown>,
}

pub(crate) async fn entity_page(
    ctx: &Ctx,
    signed: &Signed,
    name: &str,
    notice: Option<&str>,
    error: Option<Shown>,
) -> Response {
    let layout = signed.layout("entities").with_notice(notice);
    let registry = &ctx.app.registry;
    let loaded = async {
        let entity = registry.get_entity(&signed.actor, name).await?;
        let versions = registry.list_versions(&signed.actor, name).await?;
        let hidden = registry.hidden_columns(&signed.actor, name).await?;
        Ok::<_, metaengine_runtime::RegistryError>((entity, versions, hidden))
    };
    let (entity, versions, hidden) = match loaded.await {
        Ok(v) => v,
        Err(e) => return page::error_page(layout, name, shown(e)),
    };
    let suggested = format!("v{}", versions.len() + 1);
    let versions = versions
        .into_iter()
        .map(|row| {
            let (state, class) = if row.is_active {
                ("active", "active")
            } else if row.activated_at.is_some() {
                ("was active", "was-active")
            } else {
                ("never active", "never-active")
            };
            VersionLine { row, state, class }
        })
        .collect();
    let status = page::status_of(error.as_ref());
    page::html(
        status,
        &EntityPage {
            layout,
            entity,
            versions,
            hidden,
            suggested,
            error,
        },
    )
}

/// `GET /_/entities/{entity}`.
pub async fn show(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(name): Path<String>,
    Query(q): Query,
) -> Response {
    entity_page(&ctx, &signed, &name, q.get("notice"), None).await
}

/// Whether the typed confirmation matches the entity's name.
fn confirmed(form: &FormData, name: &str) -> Result<(), Shown> {
    if form.get("confirm").map(str::trim) == Some(name) {
        Ok(())
    } else {
        Err(Shown {
            status: 422,
            detail: format!("Type the entity's name, `{name}`, to confirm."),
            problems: vec![("/confirm".to_owned(), format!("must be `{name}`"))],
        })
    }
}

/// `POST /_/entities/{entity}/delete` (`force` to drop its rows): needs the typed name.
pub async fn delete(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(name): Path<String>,
    form: FormData,
) -> Response {
    if let Err(e) = confirmed(&form, &name) {
        return entity_page(&ctx, &signed, &name, None, Some(e)).await;
    }
    match ctx
        .app
        .registry
        .delete_entity(&signed.actor, &name, form.checked("force"))
        .await
    {
        Ok(_) => page::see_other("/_/entities?notice=entity-deleted"),
        Err(e) => entity_page(&ctx, &signed, &name, None, Some(shown(e))).await,
    }
}

/// `POST /_/entities/{entity}/prune`: drops the hidden columns; needs the typed name.
pub async fn prune(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(name): Path<String>,
    form: FormData,
) -> Response {
    if let Err(e) = confirmed(&form, &name) {
        return entity_page(&ctx, &signed, &name, None, Some(e)).await;
    }
    match ctx.app.registry.prune(&signed.actor, &name).await {
        Ok(_) => page::see_other(&format!("/_/entities/{}?notice=pruned", enc(&name))),
        Err(e) => entity_page(&ctx, &signed, &name, None, Some(shown(e))).await,
    }
}

/// `POST /_/entities/{entity}/versions` `version`, `from` (a version whose schema to start from,
/// or empty for no fields).
pub async fn create_version(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(name): Path<String>,
    form: FormData,
) -> Response {
    let registry = &ctx.app.registry;
    let version = form.get("version").unwrap_or("").trim();
    let schema = match form.text("from") {
        Some(from) => match registry.get_version(&signed.actor, &name, from).await {
            Ok(row) => row.schema,
            Err(e) => return entity_page(&ctx, &signed, &name, None, Some(shown(e))).await,
        },
        // A schema needs a field: a first one to rename or replace.
        None => {
            serde_json::json!({ "fields": [{ "name": "name", "type": "string", "required": true }] })
        }
    };
    match registry
        .create_version(&signed.actor, &name, version, schema)
        .await
    {
        Ok(row) => page::see_other(&format!(
            "/_/entities/{}/versions/{}?notice=version-created",
            enc(&name),
            enc(&row.version)
        )),
        Err(e) => entity_page(&ctx, &signed, &name, None, Some(shown(e))).await,
    }
}
