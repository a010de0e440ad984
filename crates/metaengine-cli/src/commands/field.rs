//! `metaengine field …`

use metaengine_store::EventType;
use serde_json::json;

use super::Context;
use super::input::read_json;
use crate::cli::FieldCommand;

pub async fn run(ctx: &Context, cmd: FieldCommand) -> anyhow::Result<()> {
    let (r, a) = (&ctx.services.registry, &ctx.actor);
    match cmd {
        FieldCommand::Add {
            entity,
            version,
            file,
        } => {
            let details = json!({ "version": version });
            let field =
                read_json(ctx, file.as_ref(), EventType::FieldAdd, &entity, details).await?;
            let name = field.get("name").cloned().unwrap_or_default();
            r.add_field(a, &entity, &version, field).await?;
            println!("added field {name} to {entity} {version}");
        }
        FieldCommand::Update {
            entity,
            version,
            field,
            file,
        } => {
            let details = json!({ "version": version, "field": field });
            let patch =
                read_json(ctx, file.as_ref(), EventType::FieldUpdate, &entity, details).await?;
            r.update_field(a, &entity, &version, &field, patch).await?;
            println!("updated field {field} of {entity} {version}");
        }
        FieldCommand::Remove {
            entity,
            version,
            field,
        } => {
            r.remove_field(a, &entity, &version, &field).await?;
            println!("removed field {field} from {entity} {version}");
        }
    }
    Ok(())
}
