//! `--snapshot` (issue 18), in process over the engine's own services: metadata as code at the
//! size of a real application, 100 entities of 5 versions each (the third one active), defined
//! on a database of its own; then the time of `snapshot export` to files, of `snapshot apply` of
//! those files to a second, empty database, and of the same apply again (nothing to change).
//!
//! The figures are times on this machine, printed and written as JSON; none is a pass/fail.

use std::time::Instant;

use anyhow::ensure;
use metaengine_runtime::snapshot::{self, files};
use metaengine_runtime::{Actor, Services, ServicesConfig};
use serde::Serialize;
use serde_json::json;

use crate::prepare::Target;

/// Entities defined.
const ENTITIES: usize = 100;
/// Versions of each entity.
const VERSIONS: usize = 5;
/// The version made active.
const ACTIVE: usize = 3;

/// The figures of one backend.
#[derive(Debug, Serialize)]
pub struct SnapshotRun {
    /// `postgres` or `sqlite`.
    pub backend: &'static str,
    /// Entities × versions.
    pub versions: usize,
    /// Seconds to define them through the registry (for scale).
    pub define_seconds: f64,
    /// Seconds of `snapshot export` (read and write the files).
    pub export_seconds: f64,
    /// Seconds of `snapshot apply` to an empty database (read the files, every step).
    pub apply_seconds: f64,
    /// Steps of that apply.
    pub apply_steps: usize,
    /// Seconds of the same apply again, when nothing changes.
    pub unchanged_seconds: f64,
}

fn admin() -> Actor {
    Actor {
        user_id: "bench".into(),
        tenant_id: "default".into(),
        realm_id: "main".into(),
        roles: vec!["admin".into()],
    }
}

async fn services(target: &Target) -> anyhow::Result<Services> {
    target.recreate().await?;
    let store = target.open_store().await?;
    Ok(Services::build(store, ServicesConfig::default()).await?)
}

/// Version `n` (from 1) of an entity: four fields, then one more per version.
fn schema(n: usize) -> serde_json::Value {
    let mut fields = vec![
        json!({ "name": "code", "type": "string", "required": true, "unique": true, "maxLength": 32 }),
        json!({ "name": "amount", "type": "decimal", "precision": 12, "scale": 2, "min": 0 }),
        json!({ "name": "state", "type": "enum", "enumValues": ["new", "done"], "default": "new" }),
        json!({ "name": "dueDate", "type": "date", "indexed": true }),
    ];
    for extra in 1..n {
        fields.push(json!({ "name": format!("note{extra}"), "type": "text" }));
    }
    json!({
        "fields": fields,
        "policies": [{ "name": "admins", "effect": "allow", "action": "*",
            "conditions": [{ "field": "user.role", "operator": "eq", "value": "admin" }] }]
    })
}

/// Defines, exports, applies and applies again, from `source` to `destination` (same backend).
pub async fn run(
    source: &Target,
    destination: &Target,
    dir: &std::path::Path,
) -> anyhow::Result<SnapshotRun> {
    let from = services(source).await?;
    let a = admin();
    let started = Instant::now();
    for e in 0..ENTITIES {
        let name = format!("Entity{e:03}");
        from.registry.create_entity(&a, &name, None).await?;
        for v in 1..=VERSIONS {
            from.registry
                .create_version(&a, &name, &format!("v{v}"), schema(v))
                .await?;
            if v == ACTIVE {
                from.registry.activate(&a, &name, &format!("v{v}")).await?;
            }
        }
    }
    let define_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let taken = snapshot::export(&from.registry, &from.tenants, &a).await?;
    files::write(&taken, dir)?;
    let export_seconds = started.elapsed().as_secs_f64();
    from.shutdown().await;

    let to = services(destination).await?;
    let started = Instant::now();
    let read = files::read(dir)?;
    let report = snapshot::apply(&to.registry, &to.tenants, &a, &read, false).await?;
    let apply_seconds = started.elapsed().as_secs_f64();
    ensure!(
        report.steps.len() == ENTITIES * (2 + VERSIONS),
        "{} steps",
        report.steps.len()
    );
    let started = Instant::now();
    let read = files::read(dir)?;
    let again = snapshot::apply(&to.registry, &to.tenants, &a, &read, false).await?;
    let unchanged_seconds = started.elapsed().as_secs_f64();
    ensure!(!again.changed, "a second apply changed {:?}", again.steps);
    ensure!(
        snapshot::export(&to.registry, &to.tenants, &a).await? == taken,
        "the applied metadata differs from the exported"
    );
    to.shutdown().await;
    eprintln!(
        "  {}: defined in {define_seconds:.1} s, exported in {export_seconds:.2} s, applied in \
         {apply_seconds:.1} s, unchanged in {unchanged_seconds:.2} s",
        source.name()
    );
    Ok(SnapshotRun {
        backend: source.name(),
        versions: ENTITIES * VERSIONS,
        define_seconds,
        export_seconds,
        apply_seconds,
        apply_steps: report.steps.len(),
        unchanged_seconds,
    })
}

/// The table of the runs.
pub fn print(runs: &[SnapshotRun]) {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "backend",
        "entities x versions",
        "export (s)",
        "apply to an empty database (s)",
        "steps",
        "apply, nothing changed (s)",
    ]);
    for r in runs {
        t.add_row([
            r.backend.to_owned(),
            format!("{ENTITIES} x {VERSIONS}"),
            format!("{:.3}", r.export_seconds),
            format!("{:.2}", r.apply_seconds),
            r.apply_steps.to_string(),
            format!("{:.3}", r.unchanged_seconds),
        ]);
    }
    println!("{t}");
}
