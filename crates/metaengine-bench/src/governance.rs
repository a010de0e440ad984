//! `--governance` (issue 16), in process over the engine's own services, on a database of its
//! own (always rebuilt):
//!
//! 1. audit rows written with the hash chain through the batched writer (the path of data reads
//!    and policy denials): `--audit-rows` `policy.deny` rows over 100 tenants from 4 producers;
//! 2. `verify` of those rows (every tenant's chain, one read in chain order);
//! 3. a page of 20 records (filter, newest first, no total) through the data service, for a
//!    caller whose policies hide two of the entity's six fields, against the same page of an
//!    identical entity without field rules, in alternating rounds.
//!
//! The figures are throughputs on this machine, printed and written as JSON; none is a pass/fail.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use metaengine_runtime::{
    Actor, AuditWriter, AuditWriterConfig, BatchOp, FilterParam, ListRequest, Services,
    ServicesConfig,
};
use metaengine_store::{AuditActor, EventType, NewAudit};
use serde::Serialize;
use serde_json::json;

use crate::prepare::Target;

/// Tenants the audit rows are spread over.
const TENANTS: u64 = 100;
/// Tasks recording audit events at once.
const PRODUCERS: u64 = 4;
/// Records of each listed entity (one tenant).
const LIST_ROWS: u64 = 10_000;
/// Callers listing at once.
const LISTERS: usize = 4;

/// The figures of one backend.
#[derive(Debug, Serialize)]
pub struct GovernanceRun {
    /// `postgres` or `sqlite`.
    pub backend: &'static str,
    /// Audit rows written.
    pub audit_rows: u64,
    /// Rows per second through the batched writer, chained.
    pub audit_rows_per_second: f64,
    /// Seconds `verify` took over every row.
    pub verify_seconds: f64,
    /// Rows `verify` checked.
    pub verified_rows: u64,
    /// Pages per second without field rules, one figure per round.
    pub list_plain: Vec<f64>,
    /// Pages per second with two of six fields hidden from the caller, one per round.
    pub list_fields: Vec<f64>,
    /// Median with fields / median without.
    pub list_ratio: f64,
}

/// Runs the three measurements on `target`.
pub async fn run(
    target: &Target,
    audit_rows: u64,
    seconds: f64,
    rounds: usize,
) -> anyhow::Result<GovernanceRun> {
    target.recreate().await?;
    let store = target.open_store().await?;

    let writer = AuditWriter::spawn(store.clone(), AuditWriterConfig::default());
    let started = Instant::now();
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let writer = writer.clone();
        producers.push(tokio::spawn(async move {
            let mut i = p;
            while i < audit_rows {
                let actor = AuditActor {
                    user_id: format!("u{}", i % 1_000),
                    tenant_id: format!("t{:03}", i % TENANTS),
                    realm_id: "main".to_owned(),
                };
                let event = NewAudit::success(
                    EventType::PolicyDeny,
                    &actor,
                    "Invoice",
                    Some(json!({ "action": "read", "policy": null, "reason": "no policy allows it", "recordId": i })),
                )
                .into_failure("no policy allows `read` on `Invoice`".to_owned());
                writer.record(event).await;
                i += PRODUCERS;
            }
        }));
    }
    for p in producers {
        p.await?;
    }
    writer.flush().await;
    let write_seconds = started.elapsed().as_secs_f64();
    writer.shutdown().await;
    eprintln!(
        "  {}: {audit_rows} audit rows in {write_seconds:.1} s",
        target.name()
    );

    let started = Instant::now();
    let report = store.verify_audit(None).await?;
    let verify_seconds = started.elapsed().as_secs_f64();
    ensure!(report.verified, "the chains do not verify: {report:?}");
    ensure!(
        report.rows == audit_rows,
        "verify checked {} rows, {audit_rows} were written",
        report.rows
    );
    eprintln!(
        "  {}: verified {} rows in {verify_seconds:.2} s",
        target.name(),
        report.rows
    );

    let services = Services::build(store.clone(), ServicesConfig::default())
        .await
        .context("services")?;
    define(&services).await?;
    let (mut plain, mut fields) = (Vec::new(), Vec::new());
    let full = caller("reader");
    let part = caller("staff");
    // Warm both paths (compiled models, statements).
    pages(&services, &full, "Plain", 0.5).await?;
    pages(&services, &part, "Guarded", 0.5).await?;
    for _ in 0..rounds {
        plain.push(pages(&services, &full, "Plain", seconds).await?);
        fields.push(pages(&services, &part, "Guarded", seconds).await?);
    }
    services.shutdown().await;
    let ratio = median(&fields) / median(&plain);
    Ok(GovernanceRun {
        backend: target.name(),
        audit_rows,
        audit_rows_per_second: audit_rows as f64 / write_seconds,
        verify_seconds,
        verified_rows: report.rows,
        list_plain: plain,
        list_fields: fields,
        list_ratio: ratio,
    })
}

fn admin() -> Actor {
    caller("admin")
}

fn caller(role: &str) -> Actor {
    Actor {
        user_id: format!("{role}-1"),
        tenant_id: "default".to_owned(),
        realm_id: "main".to_owned(),
        roles: vec![role.to_owned()],
    }
}

/// `Plain` and `Guarded`: six fields each, the same rows; `Guarded` hides `salary` and `notes`
/// from `staff`, `Plain` has no field rules (both let `reader` and `staff` read).
async fn define(services: &Services) -> anyhow::Result<()> {
    let fields = json!([
        { "name": "name", "type": "string" },
        { "name": "level", "type": "integer" },
        { "name": "salary", "type": "number" },
        { "name": "notes", "type": "text" },
        { "name": "status", "type": "enum", "enumValues": ["active", "left"] },
        { "name": "email", "type": "string" }
    ]);
    let readers = json!([{ "field": "user.role", "operator": "in", "value": ["reader", "staff"] }]);
    let staff = json!([{ "field": "user.role", "operator": "eq", "value": "staff" }]);
    let schemas = [
        (
            "Plain",
            json!({ "fields": fields, "policies": [
                { "name": "read", "effect": "allow", "action": "read", "conditions": readers }
            ]}),
        ),
        (
            "Guarded",
            json!({ "fields": fields, "policies": [
                { "name": "read", "effect": "allow", "action": "read", "conditions": readers },
                { "name": "private", "effect": "deny", "action": "read",
                  "fields": ["salary", "notes"], "conditions": staff }
            ]}),
        ),
    ];
    let a = admin();
    let r = &services.registry;
    for (name, schema) in schemas {
        r.create_entity(&a, name, None).await?;
        r.create_version(&a, name, "v1", schema).await?;
        r.activate(&a, name, "v1").await?;
        for chunk in 0..LIST_ROWS / 500 {
            let ops: Vec<BatchOp> = (0..500)
                .map(|k| {
                    let i = chunk * 500 + k;
                    BatchOp::Create {
                        entity: name.to_owned(),
                        record: json!({
                            "name": format!("person {i}"), "level": i % 10,
                            "salary": 1000 + i, "notes": "x".repeat(40),
                            "status": if i % 3 == 0 { "left" } else { "active" },
                            "email": format!("p{i}@example.com")
                        }),
                    }
                })
                .collect();
            if let Err(e) = services.data.batch(&a, &ops).await {
                bail!("seeding {name}: {e}");
            }
        }
        services.data.analyze_if_due(name).await;
    }
    Ok(())
}

/// Pages per second of the page of 20 active records, newest first, without a total, with
/// [`LISTERS`] callers at once for `seconds`.
async fn pages(
    services: &Services,
    who: &Actor,
    entity: &str,
    seconds: f64,
) -> anyhow::Result<f64> {
    let request = ListRequest {
        page_size: Some(20),
        order_by: Some("createdAt".to_owned()),
        descending: true,
        filters: vec![FilterParam {
            field: "status".to_owned(),
            operator: "eq".to_owned(),
            value: "active".to_owned(),
        }],
        count: false,
        ..ListRequest::default()
    };
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..LISTERS {
        let (data, who, request, entity) = (
            services.data.clone(),
            who.clone(),
            request.clone(),
            entity.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                let page = data.list(&who, &entity, &request).await?;
                anyhow::ensure!(page.records.len() == 20, "a short page");
                n += 1;
            }
            Ok::<u64, anyhow::Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / seconds)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The table of the runs.
pub fn print(runs: &[GovernanceRun]) {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "backend",
        "audit rows",
        "chained rows/s (batched writer)",
        "verify (s)",
        "list pages/s without field rules",
        "with 2 of 6 fields hidden",
        "ratio",
    ]);
    for r in runs {
        let show = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        t.add_row([
            r.backend.to_owned(),
            r.audit_rows.to_string(),
            format!("{:.0}", r.audit_rows_per_second),
            format!("{:.2}", r.verify_seconds),
            show(&r.list_plain),
            show(&r.list_fields),
            format!("{:.3}", r.list_ratio),
        ]);
    }
    println!("{t}");
}
