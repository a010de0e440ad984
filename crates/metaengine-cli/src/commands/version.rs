//! `metaengine version …` and `metaengine validate`.

use std::path::PathBuf;

use anyhow::bail;
use metaengine_store::{ActivationPlan, EventType, VersionRow};
use serde_json::{Value, json};

use super::Context;
use super::input::{read_json, schema_of};
use crate::cli::VersionCommand;
use crate::output::{or_dash, print_json, table};

fn field_count(v: &VersionRow) -> usize {
    v.schema
        .get("fields")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

pub async fn run(ctx: &Context, cmd: VersionCommand) -> anyhow::Result<()> {
    let (r, a) = (&ctx.services.registry, &ctx.actor);
    match cmd {
        VersionCommand::Create {
            entity,
            version,
            file,
        } => {
            let details = json!({ "version": version });
            let doc = read_json(
                ctx,
                file.as_ref(),
                EventType::VersionCreate,
                &entity,
                details,
            )
            .await?;
            let v = r
                .create_version(a, &entity, &version, schema_of(doc))
                .await?;
            println!(
                "created version {} of {} ({} fields)",
                v.version,
                entity,
                field_count(&v)
            );
            println!("next: metaengine version activate {entity} {}", v.version);
        }
        VersionCommand::List { entity, json } => {
            let versions = r.list_versions(a, &entity).await?;
            if json {
                return print_json(&versions);
            }
            let mut t = table(&[
                "VERSION",
                "ACTIVE",
                "FIELDS",
                "LAST ACTIVATED",
                "CREATED",
                "BY",
            ]);
            for v in &versions {
                t.add_row([
                    v.version.clone(),
                    if v.is_active { "yes" } else { "" }.to_owned(),
                    field_count(v).to_string(),
                    or_dash(v.activated_at.map(|t| t.to_string()).as_deref()),
                    v.created_at.to_string(),
                    v.created_by.clone(),
                ]);
            }
            println!("{t}");
        }
        VersionCommand::Show { entity, version } => {
            let v = match version {
                Some(version) => r.get_version(a, &entity, &version).await?,
                None => r.active_version(a, &entity).await?,
            };
            print_json(&v)?;
        }
        VersionCommand::Update {
            entity,
            version,
            file,
        } => {
            let details = json!({ "version": version });
            let doc = read_json(
                ctx,
                file.as_ref(),
                EventType::VersionUpdate,
                &entity,
                details,
            )
            .await?;
            let v = r
                .update_version(a, &entity, &version, schema_of(doc))
                .await?;
            println!(
                "updated version {} of {} ({} fields)",
                v.version,
                entity,
                field_count(&v)
            );
        }
        VersionCommand::Activate {
            entity,
            version,
            dry_run: true,
        } => {
            let plan = r.plan_activation(a, &entity, &version).await?;
            print_plan(&plan);
            if plan.plan.is_breaking() {
                for p in &plan.plan.breaking {
                    println!("breaking at {}: {}", p.pointer, p.message);
                }
                bail!(
                    "activating {entity} {version} would be refused ({} breaking change(s))",
                    plan.plan.breaking.len()
                );
            }
            println!("dry run: nothing changed");
        }
        VersionCommand::Activate {
            entity, version, ..
        } => {
            let done = r.activate(a, &entity, &version).await?;
            match done.previous {
                Some(p) if p != done.version.version => {
                    println!("activated {entity} {version} (was {p})");
                }
                _ => println!("activated {entity} {version}"),
            }
            print_plan(&done.plan);
        }
        VersionCommand::Deactivate { entity, version } => {
            r.deactivate(a, &entity, &version).await?;
            println!("deactivated {entity} {version}; {entity} has no active version now");
        }
        VersionCommand::Delete { entity, version } => {
            r.delete_version(a, &entity, &version).await?;
            println!("deleted version {version} of {entity}");
        }
    }
    Ok(())
}

/// The table migration of an activation, one statement a line.
fn print_plan(plan: &ActivationPlan) {
    if plan.statements.is_empty() {
        println!("table {}: no change", plan.table);
        return;
    }
    println!("table {}:", plan.table);
    for statement in &plan.statements {
        println!("  {statement};");
    }
}

/// `metaengine validate FILE`: prints every problem; exits non-zero when there is one.
pub async fn validate(
    ctx: &Context,
    file: Option<PathBuf>,
    entity: Option<&str>,
) -> anyhow::Result<()> {
    let text = match &file {
        Some(path) if path.as_os_str() != "-" => std::fs::read_to_string(path)?,
        _ => std::io::read_to_string(std::io::stdin())?,
    };
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("the document is not valid JSON: {e}"))?;
    let problems = ctx
        .services
        .registry
        .validate(entity, &schema_of(doc))
        .await?;
    if problems.is_empty() {
        println!("valid");
        return Ok(());
    }
    for p in &problems {
        println!(
            "{}: {}",
            if p.pointer.is_empty() {
                "(document)"
            } else {
                &p.pointer
            },
            p.message
        );
    }
    bail!("the schema has {} problem(s)", problems.len())
}
