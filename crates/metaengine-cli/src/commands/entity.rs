//! `metaengine entity …`

use std::io::{BufRead, IsTerminal, Write};

use metaengine_core::ident::table_name;
use metaengine_store::PageRequest;
use serde_json::json;

use super::Context;
use crate::cli::EntityCommand;
use crate::output::{or_dash, print_json, table};

pub async fn run(ctx: &Context, cmd: EntityCommand) -> anyhow::Result<()> {
    let (r, a) = (&ctx.services.registry, &ctx.actor);
    match cmd {
        EntityCommand::Create { name, description } => {
            let e = r.create_entity(a, &name, description.as_deref()).await?;
            println!("created entity {}", e.name);
            println!("next: metaengine version create {} v1 schema.json", e.name);
        }
        EntityCommand::List { page, json } => {
            let list = r
                .list_entities(a, PageRequest::new(page.page, page.page_size))
                .await?;
            if json {
                return print_json(&list);
            }
            let mut t = table(&["NAME", "ACTIVE VERSION", "DESCRIPTION", "UPDATED"]);
            for e in &list.data {
                t.add_row([
                    e.name.clone(),
                    or_dash(e.active_version.as_deref()),
                    or_dash(e.description.as_deref()),
                    e.updated_at.to_string(),
                ]);
            }
            println!("{t}");
            println!(
                "page {} of {} ({} entities)",
                list.meta.page,
                list.meta.total_pages.max(1),
                list.meta.total
            );
        }
        EntityCommand::Show { name, json } => {
            let e = r.get_entity(a, &name).await?;
            let versions = r.list_versions(a, &name).await?;
            if json {
                let labels: Vec<_> = versions.iter().map(|v| v.version.as_str()).collect();
                return print_json(&json!({ "entity": e, "versions": labels }));
            }
            println!("entity:         {}", e.name);
            println!("description:    {}", or_dash(e.description.as_deref()));
            println!("active version: {}", or_dash(e.active_version.as_deref()));
            println!("created:        {} by {}", e.created_at, e.created_by);
            println!("updated:        {}", e.updated_at);
            let labels: Vec<_> = versions.iter().map(|v| v.version.as_str()).collect();
            println!(
                "versions:       {}",
                if labels.is_empty() {
                    "-".to_owned()
                } else {
                    labels.join(", ")
                }
            );
        }
        EntityCommand::Update { name, description } => {
            let e = r.update_entity(a, &name, description.as_deref()).await?;
            println!(
                "updated entity {}: description {}",
                e.name,
                e.description
                    .map_or("cleared".to_owned(), |d| format!("`{d}`"))
            );
        }
        EntityCommand::Delete { name, force } => {
            let dropped = r.delete_entity(a, &name, force).await?;
            println!("deleted entity {name} and its versions");
            if dropped {
                println!("dropped its table {}", table_name(&name));
            }
        }
        EntityCommand::Prune { name, yes } => {
            let hidden = r.hidden_columns(a, &name).await?;
            if hidden.is_empty() {
                println!("{name} has no hidden columns");
                return Ok(());
            }
            println!(
                "hidden columns of {}: {}",
                table_name(&name),
                hidden.join(", ")
            );
            if !yes
                && !confirm(
                    &format!("drop them and their data? type `{name}` to confirm: "),
                    &name,
                )?
            {
                anyhow::bail!("nothing dropped: not confirmed (pass --yes to skip the question)");
            }
            let dropped = r.prune(a, &name).await?;
            println!(
                "dropped {} column(s): {}",
                dropped.len(),
                dropped.join(", ")
            );
        }
    }
    Ok(())
}

/// Asks on the terminal; true only when the answer is `expected`. Without a terminal, false.
fn confirm(question: &str, expected: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == expected)
}
