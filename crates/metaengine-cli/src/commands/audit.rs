//! `metaengine audit`

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use metaengine_store::{AuditQuery, PageRequest, Timestamp};

use super::Context;
use crate::cli::{AuditArgs, AuditCommand};
use crate::output::{or_dash, print_json, table};

fn parse_time(flag: &str, value: Option<&str>) -> anyhow::Result<Option<Timestamp>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| Timestamp::from(t.with_timezone(&Utc)))
                .with_context(|| {
                    format!("--{flag} `{v}` is not an RFC 3339 time (2026-11-26T10:00:00Z)")
                })
        })
        .transpose()
}

pub async fn run(ctx: &Context, args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        Some(AuditCommand::Verify { tenant, json }) => verify(ctx, tenant.as_deref(), json).await,
        Some(AuditCommand::Purge { retention_days }) => {
            let done = ctx
                .services
                .registry
                .purge_audit(&ctx.actor, retention_days)
                .await?;
            println!(
                "purged {} audit rows of {} tenants (kept {})",
                done.rows,
                done.tenants,
                match retention_days {
                    0 => "everything".to_owned(),
                    days => format!("the last {days} days"),
                }
            );
            Ok(())
        }
        None => list(ctx, args).await,
    }
}

/// `metaengine audit verify`: the report; an error (exit 1) when a chain is broken.
async fn verify(ctx: &Context, tenant: Option<&str>, json: bool) -> anyhow::Result<()> {
    let report = ctx
        .services
        .registry
        .verify_audit(&ctx.actor, tenant)
        .await?;
    if json {
        print_json(&report)?;
    } else {
        println!("{} rows of {} tenants checked", report.rows, report.tenants);
    }
    match report.first_broken {
        None => {
            if !json {
                println!("verified: every chain holds");
            }
            Ok(())
        }
        Some(b) => anyhow::bail!(
            "the audit chain of tenant `{}` is broken at event {}: {}",
            b.tenant_id,
            b.event_id.as_deref().unwrap_or("-"),
            b.reason
        ),
    }
}

async fn list(ctx: &Context, args: AuditArgs) -> anyhow::Result<()> {
    let query = AuditQuery {
        event_types: args.event_type,
        user_id: args.user,
        tenant_id: args.tenant,
        resource: args.resource,
        result: args.result,
        from: parse_time("from", args.from.as_deref())?,
        to: parse_time("to", args.to.as_deref())?,
        page: PageRequest::new(args.page.page, args.page.page_size),
    };
    let page = ctx.services.registry.audit(&ctx.actor, query).await?;
    if args.json {
        return print_json(&page);
    }
    let mut t = table(&[
        "TIME",
        "EVENT",
        "RESULT",
        "USER",
        "TENANT",
        "RESOURCE",
        "DETAILS / ERROR",
    ]);
    for row in &page.data {
        let details = match (&row.error_message, &row.details) {
            (Some(e), _) => e.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => String::new(),
        };
        t.add_row([
            row.timestamp.to_string(),
            row.event_type.clone(),
            row.result.clone(),
            row.user_id.clone(),
            row.tenant_id.clone(),
            or_dash(Some(&row.resource)),
            details,
        ]);
    }
    println!("{t}");
    println!(
        "page {} of {} ({} events)",
        page.meta.page,
        page.meta.total_pages.max(1),
        page.meta.total
    );
    Ok(())
}
