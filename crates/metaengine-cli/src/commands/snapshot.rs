//! `metaengine snapshot export|diff|apply` (SPEC §17).

use std::path::Path;

use anyhow::Context as _;
use metaengine_runtime::snapshot::{self, ApplyReport, Step, files};

use super::Context;
use crate::cli::SnapshotCommand;
use crate::output::print_json;

/// `snapshot diff` found something to change: the process exits with 2 (the steps are printed).
#[derive(Debug)]
pub struct Differs;

impl std::fmt::Display for Differs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("applying the snapshot would change the metadata")
    }
}

impl std::error::Error for Differs {}

pub async fn run(ctx: &Context, command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Export { dir } => export(ctx, &dir).await,
        SnapshotCommand::Diff { dir, json } => {
            let report = apply(ctx, &dir, true).await?;
            print_report(&report, json)?;
            if report.changed {
                return Err(Differs.into());
            }
            Ok(())
        }
        SnapshotCommand::Apply { dir, dry_run, json } => {
            let report = apply(ctx, &dir, dry_run).await?;
            print_report(&report, json)
        }
    }
}

async fn export(ctx: &Context, dir: &Path) -> anyhow::Result<()> {
    let s = &ctx.services;
    let snapshot = snapshot::export(&s.registry, &s.tenants, &ctx.actor).await?;
    files::write(&snapshot, dir)
        .with_context(|| format!("cannot write the snapshot to {}", dir.display()))?;
    let versions: usize = snapshot.entities.iter().map(|e| e.versions.len()).sum();
    println!(
        "wrote {} entities ({versions} versions) and {} tenants to {}",
        snapshot.entities.len(),
        snapshot.tenants.len(),
        dir.display()
    );
    Ok(())
}

async fn apply(ctx: &Context, dir: &Path, dry_run: bool) -> anyhow::Result<ApplyReport> {
    let snapshot = files::read(dir)
        .with_context(|| format!("cannot read the snapshot in {}", dir.display()))?;
    let s = &ctx.services;
    Ok(snapshot::apply(&s.registry, &s.tenants, &ctx.actor, &snapshot, dry_run).await?)
}

/// The steps, one line each (an activation with its plan's steps and statements below it).
fn print_report(report: &ApplyReport, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    for step in &report.steps {
        println!("{}", describe(step));
        if let Step::Activate { plan, .. } = step {
            if plan.plan.steps.is_empty() {
                println!("    the table already has this shape");
            }
            for statement in &plan.statements {
                println!("    {}", statement.replace('\n', "\n    "));
            }
        }
    }
    let count = report.steps.len();
    match (report.changed, report.dry_run) {
        (false, _) => println!("nothing to change"),
        (true, true) => println!("{count} step(s) to apply"),
        (true, false) => println!("applied {count} step(s)"),
    }
    Ok(())
}

fn describe(step: &Step) -> String {
    match step {
        Step::CreateTenant { tenant, name } => format!("create tenant {tenant} ({name})"),
        Step::UpdateTenant {
            tenant,
            name,
            status,
        } => {
            let mut what = Vec::new();
            if let Some(name) = name {
                what.push(format!("name {name}"));
            }
            if let Some(status) = status {
                what.push(format!("status {status}"));
            }
            format!("update tenant {tenant}: {}", what.join(", "))
        }
        Step::CreateEntity { entity } => format!("create entity {entity}"),
        Step::UpdateEntity { entity } => format!("update entity {entity}: description"),
        Step::CreateVersion { entity, version } => format!("create version {entity} {version}"),
        Step::UpdateVersion { entity, version } => {
            format!("update version {entity} {version}: schema")
        }
        Step::Activate {
            entity,
            version,
            plan,
        } => match plan.previous.as_deref() {
            Some(previous) => format!("activate {entity} {version} (now {previous})"),
            None => format!("activate {entity} {version}"),
        },
        Step::Deactivate { entity, version } => format!("deactivate {entity} {version}"),
    }
}
