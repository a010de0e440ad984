//! `metaengine data …`: the data API from the command line, acting as the given user.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use metaengine_runtime::{
    Actor, Delivery, FilterParam, ListRequest, Realtime, Services, SubscribeRequest,
};
use serde_json::{Map, Value};

use super::Context;
use super::input::{read_text, strip_position};
use crate::cli::{DataArgs, DataCommand};
use crate::output::table;

/// Rows per page when exporting.
const EXPORT_PAGE: u32 = 100;

pub async fn run(ctx: &Context, args: DataArgs) -> anyhow::Result<()> {
    let actor = Actor {
        user_id: args.user.unwrap_or_else(|| ctx.actor.user_id.clone()),
        tenant_id: args.tenant,
        realm_id: args.realm,
        roles: args.roles.into_iter().filter(|r| !r.is_empty()).collect(),
    };
    execute(&ctx.services, &actor, args.command).await
}

/// `data watch`: prints each event as a JSON line until `count` events or Ctrl-C; a stream the
/// feed closed (an activation, say) is opened again from the last event printed.
async fn watch(
    realtime: &Realtime,
    actor: &Actor,
    mut req: SubscribeRequest,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let mut printed = 0u64;
    let mut out = std::io::stdout();
    loop {
        let mut subscription = realtime.subscribe(actor, &req).await?;
        loop {
            let delivery = tokio::select! {
                d = subscription.next() => d,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let line = match delivery {
                None => break,
                Some(Delivery::Reset) => serde_json::json!({ "event": "reset" }),
                Some(Delivery::Event(e)) => {
                    req.last_event_id = Some(e.id.to_string());
                    let data: Value = serde_json::from_str(&e.data)?;
                    serde_json::json!({ "id": e.id.to_string(), "event": e.name, "data": data })
                }
            };
            writeln!(out, "{line}")?;
            out.flush()?;
            printed += 1;
            if count.is_some_and(|n| printed >= n) {
                return Ok(());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn execute(services: &Services, actor: &Actor, cmd: DataCommand) -> anyhow::Result<()> {
    let data = &services.data;
    match cmd {
        DataCommand::Watch {
            entity,
            query,
            last_event_id,
            count,
        } => {
            let req = SubscribeRequest {
                entities: vec![entity],
                filters: parse_filters(&query.filters)?,
                last_event_id,
            };
            watch(&services.realtime, actor, req, count).await?;
        }
        DataCommand::List {
            entity,
            query,
            order_by,
            desc,
            page,
            page_size,
            fields,
            after,
            no_count,
            expand,
            json,
        } => {
            let req = ListRequest {
                page,
                page_size,
                order_by,
                descending: desc,
                fields: fields.clone(),
                filters: parse_filters(&query.filters)?,
                after,
                count: !no_count,
                expand,
            };
            let list = data.list(actor, &entity, &req).await?;
            if json {
                println!("{}", list.to_json());
                return Ok(());
            }
            let records = list
                .records
                .iter()
                .map(|r| parse_object(r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let columns = columns(&records, fields.as_deref());
            let header: Vec<&str> = columns.iter().map(String::as_str).collect();
            let mut t = table(&header);
            for record in &records {
                t.add_row(columns.iter().map(|c| cell(record.get(c))));
            }
            println!("{t}");
            let mut footer = match (list.meta.total, list.meta.total_pages) {
                (Some(total), Some(pages)) => format!(
                    "page {} of {} ({total} record{})",
                    list.meta.page,
                    pages.max(1),
                    if total == 1 { "" } else { "s" }
                ),
                _ => format!("page {} ({} shown)", list.meta.page, records.len()),
            };
            if let Some(next) = &list.meta.next_cursor {
                footer.push_str(&format!("; next: --after {next}"));
            }
            println!("{footer}");
        }
        DataCommand::Get { entity, id, expand } => {
            let (text, _) = data.get(actor, &entity, &id, &expand).await?;
            print_record(&text)?;
        }
        DataCommand::Count { entity, query } => {
            let n = data
                .count(actor, &entity, &parse_filters(&query.filters)?)
                .await?;
            println!("{n}");
        }
        DataCommand::Create { entity, file } => {
            let input = read_input(file.as_ref())?;
            let (text, id) = data.create(actor, &entity, &input).await?;
            println!("created {id}");
            print_record(&text)?;
        }
        DataCommand::Update {
            entity,
            id,
            file,
            if_match,
        } => {
            let input = read_input(file.as_ref())?;
            let (text, version) = data.update(actor, &entity, &id, &input, if_match).await?;
            println!("updated {id} (row version {version})");
            print_record(&text)?;
        }
        DataCommand::Delete {
            entity,
            id,
            if_match,
        } => {
            data.delete(actor, &entity, &id, if_match).await?;
            println!("deleted {id}");
        }
        DataCommand::Export { entity } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut after = None;
            loop {
                let req = ListRequest {
                    page_size: Some(EXPORT_PAGE),
                    after: after.take(),
                    count: false,
                    ..ListRequest::default()
                };
                let page = data.list(actor, &entity, &req).await?;
                for record in &page.records {
                    writeln!(out, "{record}")?;
                }
                match page.meta.next_cursor {
                    Some(next) if !page.records.is_empty() => after = Some(next),
                    _ => break,
                }
            }
            out.flush()?;
        }
        DataCommand::Import {
            entity,
            file,
            format,
            dry_run,
            batch_size,
        } => {
            let args = super::import::ImportArgs {
                entity: &entity,
                file: &file,
                format: format.as_deref(),
                dry_run,
                batch_size,
            };
            super::import::run(data, actor, args).await?;
        }
    }
    Ok(())
}

/// `field:op:value` (the value may itself hold colons).
fn parse_filters(raw: &[String]) -> anyhow::Result<Vec<FilterParam>> {
    raw.iter()
        .map(|f| {
            let mut parts = f.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(field), Some(op), Some(value)) if !field.is_empty() && !op.is_empty() => {
                    Ok(FilterParam::new(field, op, value))
                }
                _ => {
                    bail!("--filter `{f}` must look like `field:op:value` (e.g. `status:eq:paid`)")
                }
            }
        })
        .collect()
}

/// A JSON object from a file or stdin.
fn read_input(file: Option<&PathBuf>) -> anyhow::Result<Value> {
    let (source, text) = read_text(file).map_err(anyhow::Error::msg)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(doc @ Value::Object(_)) => Ok(doc),
        Ok(_) => bail!("{source} must hold a JSON object"),
        Err(e) => bail!(
            "{source} is not valid JSON: {} at line {}, column {}",
            strip_position(&e.to_string()),
            e.line(),
            e.column()
        ),
    }
}

fn parse_object(text: &str) -> anyhow::Result<Map<String, Value>> {
    match serde_json::from_str(text).context("a record is not valid JSON")? {
        Value::Object(map) => Ok(map),
        _ => bail!("a record is not a JSON object"),
    }
}

fn print_record(text: &str) -> anyhow::Result<()> {
    let value: Value = serde_json::from_str(text).context("a record is not valid JSON")?;
    crate::output::print_json(&value)
}

/// `id`, then the selected fields, or else every key of the records in order of appearance.
fn columns(records: &[Map<String, Value>], fields: Option<&[String]>) -> Vec<String> {
    let mut columns = vec!["id".to_owned()];
    let mut seen: BTreeSet<String> = columns.iter().cloned().collect();
    let keys: Box<dyn Iterator<Item = &String>> = match fields {
        Some(fields) => Box::new(fields.iter()),
        None => Box::new(records.iter().flat_map(Map::keys)),
    };
    for key in keys {
        if seen.insert(key.clone()) {
            columns.push(key.clone());
        }
    }
    columns
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
