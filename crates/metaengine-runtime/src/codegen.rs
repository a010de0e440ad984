//! Typed clients (SPEC §19): one TypeScript module for the active versions, generated from the
//! compiled models (the one source of truth, as the seed's Prisma schema was): per entity the
//! record interface (system fields included, decimals and dates as `string`), its `…Create` and
//! `…Update` inputs, Zod schemas of the three with the validators of §4, the `expand` shapes of
//! §13, a small typed fetch client with problem+json errors, and a Kysely-style `DB` interface of
//! the data tables. Deterministic: the same models give the same bytes.

use std::fmt::Write as _;

use metaengine_core::FieldType;
use metaengine_core::compile::{CompiledField, CompiledModel};
use metaengine_core::ident::SYSTEM;
use metaengine_sql::query::REVERSE_LIMIT;

/// The PostgreSQL schema of the data tables (the `DB` interface's keys: `"core.ent_invoice"`).
const DATA_SCHEMA: &str = "core";

/// A TypeScript string literal of `text` (JSON's escaping is valid TypeScript).
fn literal(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The TypeScript type of a field's values as the API reads and writes them.
fn value_type(field: &CompiledField) -> String {
    match field.field_type {
        FieldType::Integer | FieldType::Number => "number".to_owned(),
        FieldType::Boolean => "boolean".to_owned(),
        FieldType::Json => "unknown".to_owned(),
        FieldType::Enum => match field.validator.enum_values.as_deref() {
            Some(values) if !values.is_empty() => values
                .iter()
                .map(|v| literal(v))
                .collect::<Vec<_>>()
                .join(" | "),
            _ => "string".to_owned(),
        },
        _ => "string".to_owned(),
    }
}

/// The TypeScript type of a system field.
fn system_type(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Integer => "number",
        _ => "string",
    }
}

/// The Zod schema of a field's values, with its validators.
fn zod(field: &CompiledField) -> String {
    let v = &field.validator;
    let mut out = match field.field_type {
        FieldType::String | FieldType::Text => "z.string()".to_owned(),
        FieldType::Integer => "z.number().int()".to_owned(),
        FieldType::Number => "z.number()".to_owned(),
        FieldType::Decimal => format!(
            "z.string().regex(new RegExp({}))",
            literal(&v.decimal_pattern())
        ),
        FieldType::Boolean => "z.boolean()".to_owned(),
        FieldType::Date => "z.string().regex(/^\\d{4}-\\d{2}-\\d{2}$/)".to_owned(),
        FieldType::Datetime => "z.string().datetime({ offset: true })".to_owned(),
        FieldType::Enum => match v.enum_values.as_deref() {
            Some([first, rest @ ..]) => {
                let mut values = vec![literal(first)];
                values.extend(rest.iter().map(|r| literal(r)));
                format!("z.enum([{}])", values.join(", "))
            }
            _ => "z.string()".to_owned(),
        },
        FieldType::Reference => "z.string().uuid()".to_owned(),
        FieldType::Json => "z.unknown()".to_owned(),
    };
    if matches!(field.field_type, FieldType::Integer | FieldType::Number) {
        if let Some(min) = v.min {
            let _ = write!(out, ".gte({min})");
        }
        if let Some(max) = v.max {
            let _ = write!(out, ".lte({max})");
        }
    }
    if matches!(field.field_type, FieldType::String | FieldType::Text) {
        if let Some(n) = v.min_length {
            let _ = write!(out, ".min({n})");
        }
        if let Some(n) = v.max_length {
            let _ = write!(out, ".max({n})");
        }
        if let Some(p) = &v.pattern {
            let _ = write!(out, ".regex(pattern({}))", literal(p));
        }
    }
    out
}

/// Whether a create must give the field.
fn create_requires(field: &CompiledField) -> bool {
    field.required && field.default.is_none()
}

/// Whether the field can be `null` (unset) in a record.
fn nullable(field: &CompiledField) -> bool {
    !field.required && field.field_type != FieldType::Json
}

/// The PascalCase name of a data table's interface (`ent_invoice` → `EntInvoiceTable`).
fn table_interface(table: &str) -> String {
    let mut out = String::new();
    for part in table.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out.push_str("Table");
    out
}

/// The type a PostgreSQL driver (`pg`) gives for a field's column.
fn column_type(field: &CompiledField) -> String {
    let base = match field.field_type {
        FieldType::Number => "number".to_owned(),
        FieldType::Boolean => "boolean".to_owned(),
        FieldType::Date | FieldType::Datetime => "Date".to_owned(),
        FieldType::Json => "unknown".to_owned(),
        FieldType::Enum => value_type(field),
        // text, varchar, uuid; int8 and numeric arrive as strings (exact).
        _ => "string".to_owned(),
    };
    if nullable(field) {
        format!("{base} | null")
    } else {
        base
    }
}

/// The reference fields of `model` whose target is among `models`, and the reverse expansions
/// of the models referring to it (`<Entity>_via_<field>`), as (key, TypeScript type).
fn expansions(model: &CompiledModel, models: &[&CompiledModel]) -> Vec<(String, String)> {
    let active = |entity: &str| models.iter().any(|m| m.entity == entity);
    let mut out = Vec::new();
    for field in &model.fields {
        if field.field_type == FieldType::Reference
            && let Some(to) = field
                .validator
                .reference_to
                .as_deref()
                .filter(|to| active(to))
        {
            out.push((field.name.clone(), format!("{to} | null")));
        }
    }
    for other in models {
        for field in &other.fields {
            if field.field_type == FieldType::Reference
                && field.validator.reference_to.as_deref() == Some(model.entity.as_str())
            {
                out.push((
                    format!("{}_via_{}", other.entity, field.name),
                    format!("{}[]", other.entity),
                ));
            }
        }
    }
    out
}

const PRELUDE: &str = r#"// Generated by metaengine (`metaengine codegen typescript`, GET /api/meta/codegen/typescript)
// from the active versions. Do not edit: generate it again after an activation.
/* eslint-disable */
import { z } from "zod";

/** A pattern of the engine as a JavaScript `RegExp`; one JavaScript cannot read matches
 * anything here (the server still checks it). */
function pattern(source: string): RegExp {
  try {
    return new RegExp(source, "u");
  } catch {
    return /(?:)/;
  }
}

/** An RFC 9457 problem, as every error of the API is answered. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  errors?: { pointer: string; message: string }[];
}

/** A request the API refused: its status and problem (`code`, `errors` with JSON pointers). */
export class ProblemError extends Error {
  readonly status: number;
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail ?? problem.title);
    this.name = "ProblemError";
    this.status = problem.status;
    this.problem = problem;
  }
}

/** The filter operators of the data API. */
export type FilterOperator =
  | "eq" | "ne" | "gt" | "gte" | "lt" | "lte" | "in" | "nin" | "contains" | "startswith" | "isnull";

/** A filter value; a list for `in` and `nin`. */
export type FilterValue = string | number | boolean | ReadonlyArray<string | number>;

/** The options of a list. */
export interface ListOptions<R> {
  page?: number;
  pageSize?: number;
  orderBy?: keyof R & string;
  orderDir?: "asc" | "desc";
  filter?: { [K in keyof R & string]?: { [O in FilterOperator]?: FilterValue } };
  fields?: ReadonlyArray<string>;
  /** The `nextCursor` of the previous page (keyset paging). */
  after?: string;
  /** `none` skips the total (big tables). */
  count?: "exact" | "none";
  /** Related records to add under `expand`, comma-separated (`customerId`, `Invoice_via_customerId`). */
  expand?: string;
}

/** A page of records. */
export interface ListPage<R> {
  data: R[];
  meta: { page?: number; pageSize?: number; total?: number; totalPages?: number; nextCursor?: string | null };
}

/** The operations on one entity's records. `ifMatch` is a record's `rowVersion`: a write that
 * finds another one answers 412. */
export interface EntityClient<R, C, U> {
  list(options?: ListOptions<R>): Promise<ListPage<R>>;
  get(id: string, options?: { expand?: string }): Promise<R>;
  count(options?: Pick<ListOptions<R>, "filter">): Promise<number>;
  create(input: C): Promise<R>;
  update(id: string, patch: U, options?: { ifMatch?: number }): Promise<R>;
  delete(id: string, options?: { ifMatch?: number }): Promise<void>;
}

/** Where the API is and who calls it. */
export interface ClientOptions {
  baseUrl: string;
  token: string;
  fetch?: typeof fetch;
}

function query(options: object): string {
  const parts: string[] = [];
  const add = (key: string, value: string) =>
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (key === "filter") {
      for (const [field, ops] of Object.entries(value as Record<string, Record<string, FilterValue>>)) {
        for (const [op, v] of Object.entries(ops)) {
          add(`filter[${field}][${op}]`, Array.isArray(v) ? v.join(",") : String(v));
        }
      }
    } else if (key === "fields" && Array.isArray(value)) {
      add(key, value.join(","));
    } else {
      add(key, String(value));
    }
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

function entityClient<R, C, U>(options: ClientOptions, entity: string): EntityClient<R, C, U> {
  const send = options.fetch ?? fetch;
  const base = `${options.baseUrl.replace(/\/$/, "")}/api/data/${entity}`;
  async function call<T>(method: string, url: string, body?: unknown, ifMatch?: number): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (ifMatch !== undefined) headers["if-match"] = `"${ifMatch}"`;
    const response = await send(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      let problem: Problem;
      try {
        problem = (await response.json()) as Problem;
      } catch {
        problem = { type: "about:blank", title: response.statusText, status: response.status, code: "unknown" };
      }
      throw new ProblemError(problem);
    }
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }
  return {
    list: (o = {}) => call<ListPage<R>>("GET", `${base}${query(o)}`),
    get: (id, o = {}) => call<R>("GET", `${base}/${encodeURIComponent(id)}${query(o)}`),
    count: async (o = {}) => (await call<{ count: number }>("GET", `${base}/count${query(o)}`)).count,
    create: (input) => call<R>("POST", base, input),
    update: (id, patch, o = {}) => call<R>("PATCH", `${base}/${encodeURIComponent(id)}`, patch, o.ifMatch),
    delete: (id, o = {}) => call<void>("DELETE", `${base}/${encodeURIComponent(id)}`, undefined, o.ifMatch),
  };
}
"#;

/// The names the module declares besides those of its entities.
const MODULE_NAMES: &[&str] = &[
    "Problem",
    "ProblemError",
    "FilterOperator",
    "FilterValue",
    "ListOptions",
    "ListPage",
    "EntityClient",
    "ClientOptions",
    "Client",
    "DB",
    "REVERSE_EXPANSION_LIMIT",
    "createClient",
    "entityClient",
    "pattern",
    "query",
    "z",
];

/// The names the module declares for one entity.
fn entity_names(model: &CompiledModel) -> Vec<String> {
    let e = &model.entity;
    let mut names: Vec<String> = [
        "",
        "Create",
        "Update",
        "Expand",
        "Schema",
        "CreateSchema",
        "UpdateSchema",
    ]
    .iter()
    .map(|suffix| format!("{e}{suffix}"))
    .collect();
    names.push(table_interface(&model.table_name));
    names
}

/// Entity names whose declarations would clash with another declaration of the module (an
/// entity `Problem`, or `Invoice` beside `InvoiceCreate`), as a message; `None` when there is
/// none.
fn clashes(models: &[&CompiledModel]) -> Option<String> {
    let mut seen: std::collections::BTreeMap<String, String> = MODULE_NAMES
        .iter()
        .map(|n| ((*n).to_owned(), "the module itself".to_owned()))
        .collect();
    let mut found = Vec::new();
    for model in models {
        for name in entity_names(model) {
            let owner = format!("entity `{}`", model.entity);
            if let Some(first) = seen.get(&name) {
                found.push(format!("`{name}` ({first} and {owner})"));
            } else {
                seen.insert(name, owner);
            }
        }
    }
    (!found.is_empty()).then(|| {
        format!(
            "the TypeScript module cannot be generated: it would declare {} twice; rename the entity",
            found.join(", ")
        )
    })
}

/// The module for `models` (sorted here by entity name); an error naming the declarations that
/// would clash when an entity's name does.
pub fn typescript(models: &[&CompiledModel]) -> Result<String, String> {
    let mut models: Vec<&CompiledModel> = models.to_vec();
    models.sort_by(|a, b| a.entity.cmp(&b.entity));
    if let Some(message) = clashes(&models) {
        return Err(message);
    }
    let mut out = String::from(PRELUDE);
    for model in &models {
        entity(&mut out, model, &models);
    }
    client(&mut out, &models);
    database(&mut out, &models);
    Ok(out)
}

fn entity(out: &mut String, model: &CompiledModel, models: &[&CompiledModel]) {
    let name = &model.entity;
    let _ = writeln!(out, "\n// ---- {name} (version {}) ----\n", model.version);
    let expand = expansions(model, models);
    let _ = writeln!(
        out,
        "/** One {name} record. Fields a caller may not read are absent. */"
    );
    let _ = writeln!(out, "export interface {name} {{");
    for system in SYSTEM {
        let _ = writeln!(
            out,
            "  {}: {};",
            system.name,
            system_type(system.field_type)
        );
    }
    for field in &model.fields {
        let null = if nullable(field) { " | null" } else { "" };
        let _ = writeln!(out, "  {}: {}{null};", field.name, value_type(field));
    }
    if !expand.is_empty() {
        let _ = writeln!(out, "  expand?: {name}Expand;");
    }
    let _ = writeln!(out, "}}\n");
    if !expand.is_empty() {
        let _ = writeln!(out, "/** What `expand` adds to one {name} record. */");
        let _ = writeln!(out, "export interface {name}Expand {{");
        for (key, ts) in &expand {
            let _ = writeln!(out, "  {key}?: {ts};");
        }
        let _ = writeln!(out, "}}\n");
    }
    let _ = writeln!(
        out,
        "/** A new {name} (`id` optional: a UUID, v7 recommended). */"
    );
    let _ = writeln!(out, "export interface {name}Create {{\n  id?: string;");
    for field in &model.fields {
        let ts = value_type(field);
        if create_requires(field) {
            let _ = writeln!(out, "  {}: {ts};", field.name);
        } else if nullable(field) {
            let _ = writeln!(out, "  {}?: {ts} | null;", field.name);
        } else {
            let _ = writeln!(out, "  {}?: {ts};", field.name);
        }
    }
    let _ = writeln!(out, "}}\n");
    let _ = writeln!(
        out,
        "/** A change to one {name} record: the fields to write (`null` clears an optional one). */"
    );
    let _ = writeln!(out, "export interface {name}Update {{");
    for field in &model.fields {
        let null = if nullable(field) { " | null" } else { "" };
        let _ = writeln!(out, "  {}?: {}{null};", field.name, value_type(field));
    }
    let _ = writeln!(out, "}}\n");

    let _ = writeln!(
        out,
        "/** Checks one {name} record as the API answers it. */"
    );
    let _ = writeln!(out, "export const {name}Schema = z.object({{");
    for system in SYSTEM {
        let schema = match system.field_type {
            FieldType::Integer => "z.number().int()",
            _ => "z.string()",
        };
        let _ = writeln!(out, "  {}: {schema},", system.name);
    }
    for field in &model.fields {
        let schema = zod(field);
        if nullable(field) {
            let _ = writeln!(out, "  {}: {schema}.nullable(),", field.name);
        } else {
            let _ = writeln!(out, "  {}: {schema},", field.name);
        }
    }
    let _ = writeln!(out, "}}).passthrough();\n");
    let _ = writeln!(
        out,
        "/** Checks a new {name} before it is sent (the server checks it again). */"
    );
    let _ = writeln!(
        out,
        "export const {name}CreateSchema = z.object({{\n  id: z.string().uuid().optional(),"
    );
    for field in &model.fields {
        let schema = zod(field);
        if create_requires(field) {
            let _ = writeln!(out, "  {}: {schema},", field.name);
        } else if nullable(field) {
            let _ = writeln!(out, "  {}: {schema}.nullable().optional(),", field.name);
        } else {
            let _ = writeln!(out, "  {}: {schema}.optional(),", field.name);
        }
    }
    let _ = writeln!(out, "}}).strict();\n");
    let _ = writeln!(
        out,
        "/** Checks a change to one {name} record before it is sent. */"
    );
    let _ = writeln!(out, "export const {name}UpdateSchema = z.object({{");
    for field in &model.fields {
        let schema = zod(field);
        if nullable(field) {
            let _ = writeln!(out, "  {}: {schema}.nullable().optional(),", field.name);
        } else {
            let _ = writeln!(out, "  {}: {schema}.optional(),", field.name);
        }
    }
    let _ = writeln!(out, "}}).strict();");
}

fn client(out: &mut String, models: &[&CompiledModel]) {
    let _ = writeln!(out, "\n// ---- client ----\n");
    let _ = writeln!(
        out,
        "/** One client per entity, over `fetch`; errors are `ProblemError`s. */"
    );
    let _ = writeln!(
        out,
        "export function createClient(options: ClientOptions) {{\n  return {{"
    );
    for model in models {
        let name = &model.entity;
        let _ = writeln!(
            out,
            "    {name}: entityClient<{name}, {name}Create, {name}Update>(options, {}),",
            literal(name)
        );
    }
    let _ = writeln!(out, "  }};\n}}\n");
    let _ = writeln!(out, "/** The client `createClient` returns. */");
    let _ = writeln!(out, "export type Client = ReturnType<typeof createClient>;");
    let _ = writeln!(out, "\n/** Most records of a reverse expansion. */");
    let _ = writeln!(
        out,
        "export const REVERSE_EXPANSION_LIMIT = {REVERSE_LIMIT};"
    );
}

fn database(out: &mut String, models: &[&CompiledModel]) {
    let _ = writeln!(
        out,
        "\n// ---- the data tables (Kysely-style, as PostgreSQL's `pg` driver reads them) ----\n"
    );
    for model in models {
        let _ = writeln!(
            out,
            "/** `{DATA_SCHEMA}.{}`, the table of {}. */",
            model.table_name, model.entity
        );
        let _ = writeln!(
            out,
            "export interface {} {{",
            table_interface(&model.table_name)
        );
        for system in SYSTEM {
            let ts = match system.field_type {
                FieldType::Datetime => "Date",
                // row_version is int8: a string.
                _ => "string",
            };
            let _ = writeln!(out, "  {}: {ts};", system.column);
        }
        for field in &model.fields {
            let _ = writeln!(out, "  {}: {};", field.column_name, column_type(field));
        }
        let _ = writeln!(out, "}}\n");
    }
    let _ = writeln!(out, "/** Every data table by its qualified name. */");
    let _ = writeln!(out, "export interface DB {{");
    for model in models {
        let _ = writeln!(
            out,
            "  {}: {};",
            literal(&format!("{DATA_SCHEMA}.{}", model.table_name)),
            table_interface(&model.table_name)
        );
    }
    let _ = writeln!(out, "}}");
}

/// The module for the active versions of every entity (each compiled model as the registry
/// serves it).
pub async fn for_active_versions(
    registry: &crate::Registry,
    actor: &crate::Actor,
) -> crate::RegistryResult<String> {
    registry.access().require_read(actor)?;
    let mut models = Vec::new();
    let mut page = 1;
    loop {
        let entities = registry
            .list_entities(actor, metaengine_store::PageRequest::new(page, 100))
            .await?;
        for entity in entities.data.iter().filter(|e| e.active_version.is_some()) {
            models.push(registry.compiled(actor, &entity.name, None).await?);
        }
        if u64::from(page) >= entities.meta.total_pages {
            break;
        }
        page += 1;
    }
    let refs: Vec<&CompiledModel> = models.iter().collect();
    typescript(&refs).map_err(|message| {
        crate::RegistryError::conflict(metaengine_core::ErrorCode::Conflict, message)
    })
}
