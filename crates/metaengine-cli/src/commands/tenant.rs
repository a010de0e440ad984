//! `metaengine tenant …`: tenants through the runtime's `TenantService`, as the CLI operator
//! (a platform admin), every change audited like the HTTP API's.

use metaengine_store::TenantStatus;

use super::Context;
use crate::cli::TenantCommand;
use crate::output::{print_json, table};

pub async fn run(ctx: &Context, cmd: TenantCommand) -> anyhow::Result<()> {
    let tenants = &ctx.services.tenants;
    let a = &ctx.actor;
    match cmd {
        TenantCommand::Create { id, name } => {
            let t = tenants
                .create(a, &id, name.as_deref().unwrap_or(&id))
                .await?;
            println!("created tenant {} ({})", t.id, t.name);
            println!(
                "next: TOKEN=$(metaengine token --user alice --tenant {} --roles admin)",
                t.id
            );
        }
        TenantCommand::List { json } => {
            let list = tenants.list(a).await?;
            if json {
                return print_json(&list);
            }
            let mut t = table(&["ID", "NAME", "STATUS", "CREATED"]);
            for row in &list {
                t.add_row([
                    row.id.clone(),
                    row.name.clone(),
                    row.status.to_string(),
                    row.created_at.to_string(),
                ]);
            }
            println!("{t}");
            println!(
                "{} tenant{}",
                list.len(),
                if list.len() == 1 { "" } else { "s" }
            );
        }
        TenantCommand::Suspend { id } => {
            let t = tenants
                .update(a, &id, None, Some(TenantStatus::Suspended.as_str()))
                .await?;
            println!(
                "suspended tenant {}: its requests are refused until `metaengine tenant activate {}`",
                t.id, t.id
            );
        }
        TenantCommand::Activate { id } => {
            let t = tenants
                .update(a, &id, None, Some(TenantStatus::Active.as_str()))
                .await?;
            println!("activated tenant {}", t.id);
        }
    }
    Ok(())
}
