//! A version: its fields, indexes and policies, the editor of a never-activated version (a field
//! form and the whole schema as JSON), validation with each problem at the field it points to,
//! the difference from the active version, the activation plan (a dry run) with its breaking
//! changes, and activate, deactivate, delete.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use metaengine_core::plan::{ColumnDef, MigrationStep};
use metaengine_core::schema::FieldType;
use metaengine_store::{EntityRow, VersionRow};
use serde_json::{Map, Value, json};

use crate::Ctx;
use crate::form::{FormData, Query};
use crate::page::{self, Layout, Shown, enc, shown};
use crate::signed::Signed;
use metaengine_server::extract::Path;

/// One field of the schema as the fields table shows it.
pub struct FieldLine {
    /// Its position in `fields` (its pointer is `/fields/<index>`).
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Its type.
    pub field_type: String,
    /// `required`, `unique`, `indexed`, `sensitive` as set.
    pub flags: Vec<&'static str>,
    /// The other options, `key: value`.
    pub options: Vec<String>,
    /// The problems pointing at it.
    pub errors: Vec<String>,
    /// How it differs from the active version: `added`, `changed` or empty.
    pub change: &'static str,
}

/// The activation plan as the page shows it.
pub struct PlanView {
    /// Each step, as JSON.
    pub steps: Vec<String>,
    /// The DDL statements.
    pub statements: Vec<String>,
    /// Breaking changes `(pointer, message)`.
    pub breaking: Vec<(String, String)>,
    /// The version active now.
    pub previous: Option<String>,
}

#[derive(Template)]
#[template(path = "version.html")]
struct VersionPage {
    layout: Layout,
    entity: EntityRow,
    version: VersionRow,
    editable: bool,
    fields: Vec<FieldLine>,
    new_field_errors: Vec<String>,
    removed: Vec<String>,
    indexes: Vec<String>,
    policies: Vec<String>,
    json: String,
    plan: Option<Result<PlanView, Shown>>,
    error: Option<Shown>,
    valid: bool,
    types: Vec<&'static str>,
    tab: String,
    /// What the field form posted, when it is shown again with its problems.
    posted: FormData,
}

impl VersionPage {
    /// A value the field form posted (empty when none).
    fn posted(&self, key: &str) -> &str {
        self.posted.get(key).unwrap_or("")
    }
}

const FLAGS: [&str; 4] = ["required", "unique", "indexed", "sensitive"];

fn fields_of(schema: &Value) -> &[Value] {
    schema
        .get("fields")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn field_name(field: &Value) -> &str {
    field.get("name").and_then(Value::as_str).unwrap_or("")
}

fn field_lines(schema: &Value, active: Option<&Value>, error: Option<&Shown>) -> Vec<FieldLine> {
    let before = active.map(fields_of).unwrap_or_default();
    fields_of(schema)
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let name = field_name(field).to_owned();
            let flags = FLAGS
                .into_iter()
                .filter(|f| field.get(*f).and_then(Value::as_bool) == Some(true))
                .collect();
            let options = field
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| {
                            !matches!(k.as_str(), "name" | "type") && !FLAGS.contains(&k.as_str())
                        })
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect()
                })
                .unwrap_or_default();
            let errors = error
                .map(|e| {
                    e.at(&format!("/fields/{index}"))
                        .into_iter()
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let change = match (active, before.iter().find(|f| field_name(f) == name)) {
                (None, _) => "",
                (Some(_), None) => "added",
                (Some(_), Some(old)) if old != field => "changed",
                _ => "",
            };
            FieldLine {
                index,
                field_type: field
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned(),
                name,
                flags,
                options,
                errors,
                change,
            }
        })
        .collect()
}

/// A column as a plan step names it: `total decimal(12,2), not null`.
fn column(c: &ColumnDef) -> String {
    let mut text = format!("{} {}", c.name, c.field_type);
    if let (Some(p), Some(s)) = (c.precision, c.scale) {
        text.push_str(&format!("({p},{s})"));
    }
    if let Some(n) = c.max_length {
        text.push_str(&format!("({n})"));
    }
    if !c.nullable {
        text.push_str(" not null");
    }
    if let Some(d) = &c.default {
        text.push_str(&format!(" default {d}"));
    }
    text
}

/// A migration step in words.
fn describe(step: &MigrationStep) -> String {
    use MigrationStep as S;
    match step {
        S::CreateTable { columns } => format!(
            "Create the table with {}",
            columns.iter().map(column).collect::<Vec<_>>().join(", ")
        ),
        S::AddColumn(c) => format!("Add column {}", column(c)),
        S::HideColumn { column } => format!("Hide column {column} (its data is kept)"),
        S::UnhideColumn { column } => format!("Show column {column} again"),
        S::WidenColumn {
            column: name,
            from,
            to,
            ..
        } => {
            format!("Widen column {name}: {} → {}", column(from), column(to))
        }
        S::NarrowColumn {
            column: name,
            from,
            to,
        } => {
            format!(
                "Narrow column {name}: {} → {} (every row fits)",
                column(from),
                column(to)
            )
        }
        S::SetNotNull { column } => format!("Make column {column} required"),
        S::DropNotNull { column } => format!("Make column {column} optional"),
        S::CreateIndex(index) => format!(
            "Create {}index {} on ({})",
            if index.unique { "unique " } else { "" },
            index.name,
            index
                .columns
                .iter()
                .map(|(c, desc)| if *desc {
                    format!("{c} desc")
                } else {
                    c.clone()
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        S::DropIndex { name } => format!("Drop index {name}"),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Everything the page shows, loaded; `json` replaces the stored schema's text (the text the
/// person posted, kept when it was refused).
pub(crate) struct Extra {
    pub(crate) json: Option<String>,
    pub(crate) error: Option<Shown>,
    pub(crate) valid: bool,
    pub(crate) tab: Option<String>,
    /// Whether the error is a refused new field (shown in the field form).
    pub(crate) adding: bool,
    /// The field form as posted.
    pub(crate) posted: FormData,
}

pub(crate) async fn version_page(
    ctx: &Ctx,
    signed: &Signed,
    (entity, version): (&str, &str),
    notice: Option<&str>,
    extra: Extra,
) -> Response {
    let layout = signed.layout("entities").with_notice(notice);
    let registry = &ctx.app.registry;
    let loaded = async {
        let e = registry.get_entity(&signed.actor, entity).await?;
        let v = registry.get_version(&signed.actor, entity, version).await?;
        let active = match &e.active_version {
            Some(a) if a != version => Some(registry.get_version(&signed.actor, entity, a).await?),
            _ => None,
        };
        Ok::<_, metaengine_runtime::RegistryError>((e, v, active))
    };
    let (entity_row, version_row, active) = match loaded.await {
        Ok(v) => v,
        Err(e) => return page::error_page(layout, version, shown(e)),
    };
    let plan = if version_row.is_active {
        None
    } else {
        Some(
            registry
                .plan_activation(&signed.actor, entity, version)
                .await
                .map(|p| PlanView {
                    steps: p.plan.steps.iter().map(describe).collect(),
                    statements: p.statements,
                    breaking: p
                        .plan
                        .breaking
                        .into_iter()
                        .map(|b| (b.pointer, b.message))
                        .collect(),
                    previous: p.previous,
                })
                .map_err(shown),
        )
    };
    let schema = &version_row.schema;
    let active_schema = active.as_ref().map(|a| &a.schema);
    let removed = active_schema
        .map(|a| {
            fields_of(a)
                .iter()
                .map(field_name)
                .filter(|n| !fields_of(schema).iter().any(|f| field_name(f) == *n))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let list = |key: &str| -> Vec<String> {
        schema
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.to_string()).collect())
            .unwrap_or_default()
    };
    let status = page::status_of(extra.error.as_ref());
    let tab = extra.tab.unwrap_or_else(|| "fields".to_owned());
    // A refused new field's problems point past the last field (or at the form's own inputs).
    let next = format!("/fields/{}", fields_of(schema).len());
    let new_field_errors = extra
        .error
        .as_ref()
        .map(|e| {
            e.problems
                .iter()
                .filter(|(p, _)| {
                    extra.adding && (p.starts_with(&next) || !p.starts_with("/fields/"))
                })
                .map(|(_, m)| m.clone())
                .collect()
        })
        .unwrap_or_default();
    page::html(
        status,
        &VersionPage {
            layout,
            editable: !version_row.is_active && version_row.activated_at.is_none(),
            fields: field_lines(schema, active_schema, extra.error.as_ref()),
            new_field_errors,
            removed,
            indexes: list("indexes"),
            policies: list("policies"),
            json: extra.json.unwrap_or_else(|| pretty(schema)),
            entity: entity_row,
            version: version_row,
            plan,
            error: extra.error,
            valid: extra.valid,
            types: FieldType::ALL.iter().map(|t| t.as_str()).collect(),
            tab,
            posted: extra.posted,
        },
    )
}

fn none() -> Extra {
    Extra {
        json: None,
        error: None,
        valid: false,
        tab: None,
        adding: false,
        posted: FormData::default(),
    }
}

fn here(entity: &str, version: &str, notice: &str) -> String {
    format!(
        "/_/entities/{}/versions/{}?notice={notice}",
        enc(entity),
        enc(version)
    )
}

/// `GET /_/entities/{entity}/versions/{version}[?tab=json]`.
pub async fn show(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, version)): Path<(String, String)>,
    Query(q): Query,
) -> Response {
    let mut extra = none();
    extra.tab = q.text("tab").map(str::to_owned);
    version_page(&ctx, &signed, (&entity, &version), q.get("notice"), extra).await
}

/// The posted schema text as JSON, or the problem at `/schema`.
fn posted_schema(form: &FormData) -> Result<Value, Shown> {
    serde_json::from_str(form.get("schema").unwrap_or("")).map_err(|e| Shown {
        status: 422,
        detail: "The schema is not valid JSON.".to_owned(),
        problems: vec![("/schema".to_owned(), e.to_string())],
    })
}

/// `POST .../versions/{version}/save` `schema`: replaces the schema of a never-activated
/// version; refused with every problem at its field.
pub async fn save(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, version)): Path<(String, String)>,
    form: FormData,
) -> Response {
    let result = match posted_schema(&form) {
        Ok(schema) => ctx
            .app
            .registry
            .update_version(&signed.actor, &entity, &version, schema)
            .await
            .map(|_| ())
            .map_err(shown),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => page::see_other(&here(&entity, &version, "version-saved")),
        Err(e) => {
            let extra = Extra {
                json: form.get("schema").map(str::to_owned),
                error: Some(e),
                valid: false,
                tab: Some("json".to_owned()),
                adding: false,
                posted: FormData::default(),
            };
            version_page(&ctx, &signed, (&entity, &version), None, extra).await
        }
    }
}

/// `POST .../versions/{version}/validate` `schema`: checks the posted schema without saving it.
pub async fn validate(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, version)): Path<(String, String)>,
    form: FormData,
) -> Response {
    let checked = match posted_schema(&form) {
        Ok(schema) => {
            if let Err(e) = ctx.app.registry.access().require_read(&signed.actor) {
                Err(shown(e))
            } else {
                match ctx.app.registry.validate(Some(&entity), &schema).await {
                    Ok(problems) if problems.is_empty() => Ok(()),
                    Ok(problems) => Err(Shown {
                        status: 422,
                        detail: format!("The schema has {} problem(s).", problems.len()),
                        problems: problems
                            .into_iter()
                            .map(|p| (p.pointer, p.message))
                            .collect(),
                    }),
                    Err(e) => Err(shown(e)),
                }
            }
        }
        Err(e) => Err(e),
    };
    let extra = Extra {
        json: form.get("schema").map(str::to_owned),
        valid: checked.is_ok(),
        error: checked.err(),
        tab: Some("json".to_owned()),
        adding: false,
        posted: FormData::default(),
    };
    version_page(&ctx, &signed, (&entity, &version), None, extra).await
}

/// A field definition from the field form: only what was filled in.
fn field_from_form(form: &FormData) -> Result<Value, Shown> {
    let mut field = Map::new();
    field.insert("name".into(), json!(form.get("name").unwrap_or("").trim()));
    field.insert("type".into(), json!(form.get("type").unwrap_or("")));
    for flag in FLAGS {
        if form.checked(flag) {
            field.insert(flag.into(), json!(true));
        }
    }
    for key in [
        "label",
        "description",
        "placeholder",
        "helpText",
        "pattern",
        "referenceTo",
    ] {
        if let Some(v) = form.text(key) {
            field.insert(key.into(), json!(v));
        }
    }
    let mut problems = Vec::new();
    for key in ["min", "max", "minLength", "maxLength", "precision", "scale"] {
        if let Some(v) = form.text(key) {
            match serde_json::from_str::<Value>(v) {
                Ok(n @ Value::Number(_)) => {
                    field.insert(key.into(), n);
                }
                _ => problems.push((format!("/{key}"), format!("`{key}` must be a number"))),
            }
        }
    }
    if let Some(v) = form.text("enumValues") {
        let values: Vec<&str> = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        field.insert("enumValues".into(), json!(values));
    }
    if let Some(v) = form.text("default") {
        // A JSON literal (`0`, `true`, `"draft"`), or else the text itself.
        let value = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
        field.insert("default".into(), value);
    }
    if problems.is_empty() {
        Ok(Value::Object(field))
    } else {
        Err(Shown {
            status: 422,
            detail: "The field is not valid.".to_owned(),
            problems,
        })
    }
}

/// `POST .../versions/{version}/fields`: adds a field from the field form.
pub async fn add_field(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, version)): Path<(String, String)>,
    form: FormData,
) -> Response {
    let result = match field_from_form(&form) {
        Ok(field) => ctx
            .app
            .registry
            .add_field(&signed.actor, &entity, &version, field)
            .await
            .map(|_| ())
            .map_err(shown),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => page::see_other(&here(&entity, &version, "field-added")),
        Err(e) => {
            let extra = Extra {
                error: Some(e),
                adding: true,
                posted: form,
                ..none()
            };
            version_page(&ctx, &signed, (&entity, &version), None, extra).await
        }
    }
}

/// `POST .../versions/{version}/fields/{field}/delete`.
pub async fn remove_field(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, version, field)): Path<(String, String, String)>,
) -> Response {
    match ctx
        .app
        .registry
        .remove_field(&signed.actor, &entity, &version, &field)
        .await
    {
        Ok(_) => page::see_other(&here(&entity, &version, "field-removed")),
        Err(e) => {
            let extra = Extra {
                error: Some(shown(e)),
                ..none()
            };
            version_page(&ctx, &signed, (&entity, &version), None, extra).await
        }
    }
}

/// `POST .../versions/{version}/activate`: migrates the table and makes it the active version
/// (breaking changes refuse it, shown with the plan).
pub async fn activate(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, version)): Path<(String, String)>,
) -> Response {
    match ctx
        .app
        .registry
        .activate(&signed.actor, &entity, &version)
        .await
    {
        Ok(_) => page::see_other(&format!("/_/entities/{}?notice=activated", enc(&entity))),
        Err(e) => {
            let extra = Extra {
                error: Some(shown(e)),
                ..none()
            };
            version_page(&ctx, &signed, (&entity, &version), None, extra).await
        }
    }
}

/// `POST .../versions/{version}/deactivate`.
pub async fn deactivate(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, version)): Path<(String, String)>,
) -> Response {
    match ctx
        .app
        .registry
        .deactivate(&signed.actor, &entity, &version)
        .await
    {
        Ok(_) => page::see_other(&format!("/_/entities/{}?notice=deactivated", enc(&entity))),
        Err(e) => {
            crate::views::entities::entity_page(&ctx, &signed, &entity, None, Some(shown(e))).await
        }
    }
}

/// `POST .../versions/{version}/delete`.
pub async fn delete(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, version)): Path<(String, String)>,
) -> Response {
    match ctx
        .app
        .registry
        .delete_version(&signed.actor, &entity, &version)
        .await
    {
        Ok(()) => page::see_other(&format!(
            "/_/entities/{}?notice=version-deleted",
            enc(&entity)
        )),
        Err(e) => {
            let extra = Extra {
                error: Some(shown(e)),
                ..none()
            };
            version_page(&ctx, &signed, (&entity, &version), None, extra).await
        }
    }
}
