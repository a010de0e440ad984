//! Data: the grid of an active entity (columns from the compiled model, sort by any column,
//! every filter operator, keyset paging, an optional count, expansions of references as links,
//! CSV export of the current filter, live rows) and the record form generated from the model
//! (create, edit with `If-Match`, delete; 422 errors at their fields, 412 when someone else
//! changed the record).

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metaengine_core::FieldType;
use metaengine_core::compile::CompiledField;
use metaengine_core::policy::Action;
use metaengine_core::record::FilterOp;
use metaengine_runtime::{ActiveModel, FilterParam, ListRequest, parse_expand};
use metaengine_store::PageRequest;
use serde_json::{Map, Value};

use crate::Ctx;
use crate::form::{FormData, Query};
use crate::page::{self, Layout, Shown, enc, shown};
use crate::signed::Signed;
use metaengine_server::extract::Path;

/// Rows a grid page shows unless asked otherwise.
const GRID_PAGE: u32 = 20;

/// Rows one CSV export holds at most.
const EXPORT_MAX_ROWS: usize = 100_000;

/// The system columns a grid can sort by and shows.
const SYSTEM: [&str; 3] = ["id", "createdAt", "updatedAt"];

// ---- the entity index ----

#[derive(Template)]
#[template(path = "data_index.html")]
struct IndexPage {
    layout: Layout,
    entities: Vec<(String, String)>,
}

/// `GET /_/data`: the active entities the caller may read.
pub async fn index(State(ctx): State<Ctx>, signed: Signed) -> Response {
    let layout = signed.layout("data");
    let rows = match ctx.app.store.list_entities(PageRequest::new(1, 1000)).await {
        Ok(page) => page.data,
        Err(e) => {
            return page::error_page(
                layout,
                "Data",
                shown(metaengine_runtime::DataError::from(e)),
            );
        }
    };
    let mut entities = Vec::new();
    for row in rows {
        let Some(version) = row.active_version else {
            continue;
        };
        let Ok(model) = ctx.app.data.model(&row.name).await else {
            continue;
        };
        let readable = !matches!(
            ctx.app.gate.row_filter(&model, Action::Read, &signed.actor),
            metaengine_core::policy::RowFilter::Nothing
        );
        if readable {
            entities.push((row.name, version));
        }
    }
    page::html(StatusCode::OK, &IndexPage { layout, entities })
}

// ---- the grid ----

/// One column of the grid.
pub struct Column {
    /// The field (or system column) name.
    pub name: String,
    /// Its type, for alignment (`number`…), empty for system columns.
    pub kind: &'static str,
    /// The entity it refers to, for references.
    pub reference: Option<String>,
    /// The link that sorts by it (the other direction when it is the sort already).
    pub sort_link: String,
    /// `↑`, `↓` or empty.
    pub arrow: &'static str,
}

/// One cell of the grid.
pub struct Cell {
    /// The text shown.
    pub text: String,
    /// A link (references, the id).
    pub link: Option<String>,
    /// Whether the value is null.
    pub null: bool,
    /// Whether it is a number (aligned right).
    pub number: bool,
}

/// One filter of the filter form.
pub struct FilterLine {
    /// The field.
    pub field: String,
    /// The operator.
    pub op: String,
    /// The value.
    pub value: String,
}

#[derive(Template)]
#[template(path = "grid.html")]
struct GridPage {
    layout: Layout,
    entity: String,
    version: String,
    columns: Vec<Column>,
    rows: Vec<(String, Vec<Cell>)>,
    filters: Vec<FilterLine>,
    field_names: Vec<String>,
    operators: Vec<&'static str>,
    reference_fields: Vec<String>,
    expand: String,
    total: Option<u64>,
    next_link: Option<String>,
    first_link: Option<String>,
    count_link: String,
    export_link: String,
    events_link: String,
    can_create: bool,
    error: Option<Shown>,
}

/// The list request a grid's query string asks for, and the query kept for its links.
struct GridQuery {
    request: ListRequest,
    /// `(key, value)` of the filters, the sort, the expansions and the page size: what every
    /// link of the page carries on.
    kept: Vec<(String, String)>,
    filters: Vec<FilterLine>,
}

fn grid_query(q: &FormData) -> GridQuery {
    let mut filters = Vec::new();
    let mut kept = Vec::new();
    // Filters: `f`, `o`, `v` triples from the filter form, and `filter[f][o]=v` as in the API.
    let (mut fs, mut os, mut vs) = (Vec::new(), Vec::new(), Vec::new());
    for (k, v) in &q.0 {
        match k.as_str() {
            "f" => fs.push(v.clone()),
            "o" => os.push(v.clone()),
            "v" => vs.push(v.clone()),
            _ => {
                if let Some((field, op)) = metaengine_core::record::parse_filter_key(k) {
                    filters.push(FilterLine {
                        field: field.to_owned(),
                        op: op.to_owned(),
                        value: v.clone(),
                    });
                }
            }
        }
    }
    for ((field, op), value) in fs.into_iter().zip(os).zip(vs) {
        if !field.is_empty() && (!value.is_empty() || op == "isnull") {
            filters.push(FilterLine { field, op, value });
        }
    }
    for f in &filters {
        kept.push((format!("filter[{}][{}]", f.field, f.op), f.value.clone()));
    }
    for key in ["orderBy", "orderDir", "expand", "pageSize"] {
        if let Some(v) = q.text(key) {
            kept.push((key.to_owned(), v.to_owned()));
        }
    }
    let request = ListRequest {
        page: None,
        page_size: Some(
            q.text("pageSize")
                .and_then(|v| v.parse().ok())
                .unwrap_or(GRID_PAGE),
        ),
        // Newest first unless asked otherwise (the API's default is oldest first).
        order_by: Some(q.text("orderBy").unwrap_or("createdAt").to_owned()),
        descending: match q.text("orderDir") {
            Some(dir) => dir == "desc",
            None => q.text("orderBy").is_none(),
        },
        fields: None,
        filters: filters
            .iter()
            .map(|f| FilterParam::new(&f.field, &f.op, &f.value))
            .collect(),
        after: q.text("after").map(str::to_owned),
        count: q.get("count") == Some("exact"),
        expand: q.text("expand").map(parse_expand).unwrap_or_default(),
    };
    GridQuery {
        request,
        kept,
        filters,
    }
}

fn link(base: &str, pairs: &[(String, String)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    if query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{query}")
    }
}

fn with(pairs: &[(String, String)], drop: &[&str], add: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter(|(k, _)| !drop.contains(&k.as_str()))
        .cloned()
        .chain(add.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        .collect()
}

/// The text of a value in a cell or a CSV field.
fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A short label of an expanded record: its first text field other than the id.
fn label_of(record: &Value) -> Option<String> {
    record
        .as_object()?
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "id" | "createdAt"
                    | "updatedAt"
                    | "createdBy"
                    | "updatedBy"
                    | "rowVersion"
                    | "expand"
                    | "tenantId"
                    | "realmId"
            )
        })
        .find_map(|(_, v)| v.as_str().map(str::to_owned))
}

fn kind(t: FieldType) -> &'static str {
    match t {
        FieldType::Integer | FieldType::Number | FieldType::Decimal => "number",
        _ => "",
    }
}

fn readable_fields<'m>(
    ctx: &Ctx,
    model: &'m ActiveModel,
    signed: &Signed,
) -> Vec<&'m CompiledField> {
    let access = ctx
        .app
        .gate
        .field_access(model, Action::Read, &signed.actor);
    model
        .model
        .fields
        .iter()
        .filter(|f| access.allows(&f.name))
        .collect()
}

/// `GET /_/data/{entity}`: a page of the grid.
pub async fn grid(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(entity): Path<String>,
    Query(q): Query,
) -> Response {
    let layout = signed.layout("data").with_notice(q.get("notice"));
    let model = match ctx.app.data.model(&entity).await {
        Ok(m) => m,
        Err(e) => return page::error_page(layout, &entity, shown(e)),
    };
    let gq = grid_query(&q);
    let base = format!("/_/data/{}", enc(&entity));
    let fields = readable_fields(&ctx, &model, &signed);
    let order_by = gq.request.order_by.clone().unwrap_or_default();
    let descending = gq.request.descending;
    let mut columns: Vec<Column> = Vec::new();
    let mut add_column = |name: &str, kind: &'static str, reference: Option<String>| {
        let this = name == order_by;
        let dir = if this && !descending { "desc" } else { "asc" };
        columns.push(Column {
            name: name.to_owned(),
            kind,
            reference,
            sort_link: link(
                &base,
                &with(
                    &gq.kept,
                    &["orderBy", "orderDir"],
                    &[("orderBy", name), ("orderDir", dir)],
                ),
            ),
            arrow: match (this, descending) {
                (false, _) => "",
                (true, false) => "↑",
                (true, true) => "↓",
            },
        });
    };
    add_column("id", "", None);
    for f in &fields {
        add_column(
            &f.name,
            kind(f.field_type),
            f.validator.reference_to.clone(),
        );
    }
    add_column("createdAt", "", None);
    add_column("updatedAt", "", None);
    let (rows, meta, error) = match ctx.app.data.list(&signed.actor, &entity, &gq.request).await {
        Ok(p) => (p.records, Some(p.meta), None),
        Err(e) => (Vec::new(), None, Some(shown(e))),
    };
    let rows = rows
        .iter()
        .filter_map(|text| serde_json::from_str::<Map<String, Value>>(text).ok())
        .map(|record| {
            let id = record.get("id").map(text_of).unwrap_or_default();
            let expanded = record.get("expand");
            let cells = columns
                .iter()
                .map(|c| {
                    let value = record.get(&c.name).unwrap_or(&Value::Null);
                    let text = text_of(value);
                    let link = if c.name == "id" {
                        Some(format!("{base}/{}", enc(&id)))
                    } else {
                        c.reference
                            .as_ref()
                            .filter(|_| !value.is_null())
                            .map(|target| format!("/_/data/{}/{}", enc(target), enc(&text)))
                    };
                    let label = expanded.and_then(|e| e.get(&c.name)).and_then(label_of);
                    Cell {
                        number: c.kind == "number",
                        null: value.is_null(),
                        text: label.unwrap_or(text),
                        link,
                    }
                })
                .collect();
            (id, cells)
        })
        .collect();
    let next_link = meta
        .as_ref()
        .and_then(|m| m.next_cursor.as_deref())
        .map(|c| link(&base, &with(&gq.kept, &[], &[("after", c)])));
    let first_link = gq.request.after.as_ref().map(|_| link(&base, &gq.kept));
    let count_link = link(
        &base,
        &with(&gq.kept, &[], &[("count", "exact")])
            .into_iter()
            .chain(
                gq.request
                    .after
                    .iter()
                    .map(|a| ("after".to_owned(), a.clone())),
            )
            .collect::<Vec<_>>(),
    );
    let export_link = link(
        &format!("{base}/export.csv"),
        &with(&gq.kept, &["pageSize"], &[]),
    );
    // The realtime feed of this grid's filter (the stream takes the list's filters only).
    let filter_pairs: Vec<(String, String)> = gq
        .kept
        .iter()
        .filter(|(k, _)| k.starts_with("filter["))
        .cloned()
        .collect();
    let events_link = link(&format!("/api/data/{}/events", enc(&entity)), &filter_pairs);
    let can_create = ctx
        .app
        .gate
        .decide(&model, Action::Create, &signed.actor, None)
        .allowed;
    let status = page::status_of(error.as_ref());
    page::html(
        status,
        &GridPage {
            layout,
            version: model.model.version.clone(),
            field_names: SYSTEM[..1]
                .iter()
                .map(|s| (*s).to_owned())
                .chain(fields.iter().map(|f| f.name.clone()))
                .chain(SYSTEM[1..].iter().map(|s| (*s).to_owned()))
                .collect(),
            reference_fields: fields
                .iter()
                .filter(|f| f.validator.reference_to.is_some())
                .map(|f| f.name.clone())
                .collect(),
            operators: FilterOp::ALL.iter().map(|o| o.as_str()).collect(),
            expand: q.text("expand").unwrap_or("").to_owned(),
            columns,
            rows,
            filters: gq.filters,
            total: meta.and_then(|m| m.total),
            next_link,
            first_link,
            count_link,
            export_link,
            events_link,
            can_create,
            error,
            entity,
        },
    )
}

/// `GET /_/data/{entity}/export.csv`: every record of the current filter and sort as CSV
/// (at most [`EXPORT_MAX_ROWS`]), read page by page through the data service.
pub async fn export(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(entity): Path<String>,
    Query(q): Query,
) -> Response {
    let layout = signed.layout("data");
    let model = match ctx.app.data.model(&entity).await {
        Ok(m) => m,
        Err(e) => return page::error_page(layout, &entity, shown(e)),
    };
    let mut gq = grid_query(&q);
    gq.request.page_size = Some(ctx.app.limits.max_page_size);
    gq.request.after = None;
    gq.request.expand = Vec::new();
    let columns: Vec<String> = SYSTEM[..1]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(
            readable_fields(&ctx, &model, &signed)
                .iter()
                .map(|f| f.name.clone()),
        )
        .chain(SYSTEM[1..].iter().map(|s| (*s).to_owned()))
        .collect();
    let mut out = csv::Writer::from_writer(Vec::new());
    if out.write_record(&columns).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot write CSV").into_response();
    }
    let mut written = 0;
    loop {
        let page = match ctx.app.data.list(&signed.actor, &entity, &gq.request).await {
            Ok(p) => p,
            Err(e) => return page::error_page(layout, &entity, shown(e)),
        };
        for text in &page.records {
            let Ok(record) = serde_json::from_str::<Map<String, Value>>(text) else {
                continue;
            };
            let line: Vec<String> = columns
                .iter()
                .map(|c| record.get(c).map(text_of).unwrap_or_default())
                .collect();
            if out.write_record(&line).is_err() {
                return (StatusCode::INTERNAL_SERVER_ERROR, "cannot write CSV").into_response();
            }
            written += 1;
        }
        match page.meta.next_cursor {
            Some(next) if written < EXPORT_MAX_ROWS => gq.request.after = Some(next),
            _ => break,
        }
    }
    let body = out.into_inner().unwrap_or_default();
    let disposition = format!("attachment; filename=\"{entity}.csv\"");
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

// ---- the record form ----

/// One input of the record form.
pub struct Input {
    /// The field.
    pub name: String,
    /// `text`, `textarea`, `number`, `date`, `select`, `checkbox`…
    pub widget: &'static str,
    /// The value shown.
    pub value: String,
    /// The choices of a select (`enum`, `boolean`).
    pub choices: Vec<String>,
    /// Whether it is required.
    pub required: bool,
    /// The type, shown beside the label.
    pub field_type: &'static str,
    /// The entity a reference points to.
    pub reference: Option<String>,
    /// The step of a number input.
    pub step: &'static str,
    /// Problems at this field.
    pub errors: Vec<String>,
    /// An example of the value's form.
    pub placeholder: &'static str,
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage {
    layout: Layout,
    entity: String,
    id: Option<String>,
    row_version: Option<i64>,
    inputs: Vec<Input>,
    system: Vec<(String, String)>,
    error: Option<Shown>,
    conflict: bool,
    can_delete: bool,
}

fn widget(f: &CompiledField) -> (&'static str, &'static str, Vec<String>) {
    match f.field_type {
        FieldType::Text | FieldType::Json => ("textarea", "", Vec::new()),
        FieldType::Integer => ("number", "1", Vec::new()),
        FieldType::Number => ("number", "any", Vec::new()),
        FieldType::Date => ("date", "", Vec::new()),
        FieldType::Boolean => ("select", "", vec!["true".to_owned(), "false".to_owned()]),
        FieldType::Enum => (
            "select",
            "",
            f.validator.enum_values.clone().unwrap_or_default(),
        ),
        _ => ("text", "", Vec::new()),
    }
}

/// The inputs of the fields the caller may write with `action`, filled from `values`.
fn inputs(
    ctx: &Ctx,
    model: &ActiveModel,
    signed: &Signed,
    action: Action,
    values: &dyn Fn(&CompiledField) -> String,
    error: Option<&Shown>,
) -> Vec<Input> {
    let access = ctx.app.gate.field_access(model, action, &signed.actor);
    let read = ctx
        .app
        .gate
        .field_access(model, Action::Read, &signed.actor);
    model
        .model
        .fields
        .iter()
        .filter(|f| access.allows(&f.name) && (action == Action::Create || read.allows(&f.name)))
        .map(|f| {
            let (widget, step, choices) = widget(f);
            Input {
                name: f.name.clone(),
                widget,
                value: values(f),
                choices,
                required: f.required,
                field_type: f.field_type.as_str(),
                reference: f.validator.reference_to.clone(),
                step,
                errors: error
                    .map(|e| {
                        e.at(&format!("/{}", f.name))
                            .into_iter()
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                placeholder: match f.field_type {
                    FieldType::Datetime => "2026-12-07T10:00:00Z",
                    FieldType::Decimal => "0.00",
                    FieldType::Reference => "the id of a record",
                    FieldType::Json => "{\"any\": \"JSON\"}",
                    _ => "",
                },
            }
        })
        .collect()
}

/// The record a form posted, typed by the model: an empty input is left out of a create and
/// cleared (`null`) by an edit. A number that does not parse goes as text, so the API's own
/// validation answers it at its field.
fn record_from_form(model: &ActiveModel, form: &FormData, create: bool) -> Result<Value, Shown> {
    let mut record = Map::new();
    let mut problems = Vec::new();
    for f in &model.model.fields {
        let Some(raw) = form.get(&format!("field.{}", f.name)) else {
            continue;
        };
        let text = if f.field_type == FieldType::Text {
            raw
        } else {
            raw.trim()
        };
        if text.is_empty() {
            if !create {
                record.insert(f.name.clone(), Value::Null);
            }
            continue;
        }
        let value = match f.field_type {
            FieldType::Integer => text
                .parse::<i64>()
                .map_or_else(|_| Value::String(text.to_owned()), Value::from),
            FieldType::Number => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(text.to_owned()), Value::Number),
            FieldType::Boolean => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => Value::String(other.to_owned()),
            },
            FieldType::Json => match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => {
                    problems.push((format!("/{}", f.name), format!("not valid JSON: {e}")));
                    continue;
                }
            },
            _ => Value::String(text.to_owned()),
        };
        record.insert(f.name.clone(), value);
    }
    if problems.is_empty() {
        Ok(Value::Object(record))
    } else {
        Err(Shown {
            status: 422,
            detail: "The record is not valid.".to_owned(),
            problems,
        })
    }
}

fn form_value(form: &FormData) -> impl Fn(&CompiledField) -> String + '_ {
    move |f| {
        form.get(&format!("field.{}", f.name))
            .unwrap_or("")
            .to_owned()
    }
}

struct RecordView<'a> {
    entity: &'a str,
    id: Option<&'a str>,
    row_version: Option<i64>,
    system: Vec<(String, String)>,
    error: Option<Shown>,
}

fn record_page(
    ctx: &Ctx,
    signed: &Signed,
    model: &ActiveModel,
    view: RecordView<'_>,
    values: &dyn Fn(&CompiledField) -> String,
    layout: Layout,
) -> Response {
    let action = if view.id.is_some() {
        Action::Update
    } else {
        Action::Create
    };
    let status = page::status_of(view.error.as_ref());
    let inputs = inputs(ctx, model, signed, action, values, view.error.as_ref());
    page::html(
        status,
        &RecordPage {
            layout,
            entity: view.entity.to_owned(),
            id: view.id.map(str::to_owned),
            row_version: view.row_version,
            inputs,
            system: view.system,
            conflict: status == StatusCode::PRECONDITION_FAILED,
            can_delete: view.id.is_some()
                && ctx
                    .app
                    .gate
                    .decide(model, Action::Delete, &signed.actor, None)
                    .allowed,
            error: view.error,
        },
    )
}

async fn model_or_page(
    ctx: &Ctx,
    layout: &Layout,
    entity: &str,
) -> Result<Arc<ActiveModel>, Response> {
    ctx.app
        .data
        .model(entity)
        .await
        .map_err(|e| page::error_page(layout.clone(), entity, shown(e)))
}

/// `GET /_/data/{entity}/new`.
pub async fn new(State(ctx): State<Ctx>, signed: Signed, Path(entity): Path<String>) -> Response {
    let layout = signed.layout("data");
    let model = match model_or_page(&ctx, &layout, &entity).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let defaults = |f: &CompiledField| f.default.as_ref().map(text_of).unwrap_or_default();
    let view = RecordView {
        entity: &entity,
        id: None,
        row_version: None,
        system: Vec::new(),
        error: None,
    };
    record_page(&ctx, &signed, &model, view, &defaults, layout)
}

/// `POST /_/data/{entity}/new`: creates the record (422 shown at the fields).
pub async fn create(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(entity): Path<String>,
    form: FormData,
) -> Response {
    let layout = signed.layout("data");
    let model = match model_or_page(&ctx, &layout, &entity).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let result = match record_from_form(&model, &form, true) {
        Ok(input) => ctx
            .app
            .data
            .create(&signed.actor, &entity, &input)
            .await
            .map_err(shown),
        Err(e) => Err(e),
    };
    match result {
        Ok((_, id)) => page::see_other(&format!(
            "/_/data/{}/{}?notice=record-created",
            enc(&entity),
            enc(&id)
        )),
        Err(e) => {
            let view = RecordView {
                entity: &entity,
                id: None,
                row_version: None,
                system: Vec::new(),
                error: Some(e),
            };
            record_page(&ctx, &signed, &model, view, &form_value(&form), layout)
        }
    }
}

/// The system columns of a record, to show beside the form.
fn system_of(record: &Map<String, Value>) -> Vec<(String, String)> {
    [
        "id",
        "rowVersion",
        "createdAt",
        "createdBy",
        "updatedAt",
        "updatedBy",
    ]
    .iter()
    .filter_map(|k| record.get(*k).map(|v| ((*k).to_owned(), text_of(v))))
    .collect()
}

/// `GET /_/data/{entity}/{id}`: the record's form.
pub async fn edit(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, id)): Path<(String, String)>,
    Query(q): Query,
) -> Response {
    let layout = signed.layout("data").with_notice(q.get("notice"));
    let model = match model_or_page(&ctx, &layout, &entity).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (text, row_version) = match ctx.app.data.get(&signed.actor, &entity, &id, &[]).await {
        Ok(v) => v,
        Err(e) => return page::error_page(layout, &entity, shown(e)),
    };
    let record: Map<String, Value> = serde_json::from_str(&text).unwrap_or_default();
    let values = |f: &CompiledField| record.get(&f.name).map(text_of).unwrap_or_default();
    let view = RecordView {
        entity: &entity,
        id: Some(&id),
        row_version: Some(row_version),
        system: system_of(&record),
        error: None,
    };
    record_page(&ctx, &signed, &model, view, &values, layout)
}

fn row_version(form: &FormData) -> Option<i64> {
    form.text("rowVersion").and_then(|v| v.parse().ok())
}

/// `POST /_/data/{entity}/{id}`: saves the record with `If-Match` the version the form was
/// opened at; a 412 says someone else changed it meanwhile.
pub async fn update(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, id)): Path<(String, String)>,
    form: FormData,
) -> Response {
    let layout = signed.layout("data");
    let model = match model_or_page(&ctx, &layout, &entity).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let result = match record_from_form(&model, &form, false) {
        Ok(input) => ctx
            .app
            .data
            .update(&signed.actor, &entity, &id, &input, row_version(&form))
            .await
            .map_err(shown),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => page::see_other(&format!(
            "/_/data/{}/{}?notice=record-saved",
            enc(&entity),
            enc(&id)
        )),
        Err(mut e) => {
            if e.status == 412 {
                e.detail = format!(
                    "Someone else changed this record since you opened it ({}). Your changes below are not saved; open the record again to see the current values.",
                    e.detail
                );
            }
            let view = RecordView {
                entity: &entity,
                id: Some(&id),
                row_version: row_version(&form),
                system: Vec::new(),
                error: Some(e),
            };
            record_page(&ctx, &signed, &model, view, &form_value(&form), layout)
        }
    }
}

/// `POST /_/data/{entity}/{id}/delete` (with the row version the form was opened at).
pub async fn delete(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((entity, id)): Path<(String, String)>,
    form: FormData,
) -> Response {
    let layout = signed.layout("data");
    match ctx
        .app
        .data
        .delete(&signed.actor, &entity, &id, row_version(&form))
        .await
    {
        Ok(()) => page::see_other(&format!("/_/data/{}?notice=record-deleted", enc(&entity))),
        Err(e) => page::error_page(layout, &entity, shown(e)),
    }
}
