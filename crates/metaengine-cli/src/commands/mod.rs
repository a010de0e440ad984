//! One module per command group; `run` dispatches.

mod audit;
mod data;
mod entity;
mod field;
mod import;
mod input;
mod policy;
mod serve;
mod snapshot;
mod tenant;
mod token;
mod version;

use anyhow::Context as _;
use metaengine_runtime::{AccessConfig, Actor, Services, ServicesConfig};

use crate::cli::{Cli, Command};

use crate::config::{database_url, open_store, redact};
pub use snapshot::Differs;

/// The local operator: a platform admin, since the command line holds the database credentials.
fn operator(user: &str, access: &AccessConfig) -> Actor {
    Actor {
        user_id: user.to_owned(),
        tenant_id: access.platform_tenant.clone(),
        realm_id: "default".to_owned(),
        roles: vec![access.admin_role.clone()],
    }
}

/// What every command works with.
pub struct Context {
    /// The engine's services over the database (the same wiring as the server's).
    pub services: Services,
    /// The local operator.
    pub actor: Actor,
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Serve(args) = cli.command {
        return serve::run(&cli.global, *args).await;
    }
    if let Command::Token(args) = &cli.command {
        return token::run(&cli.global, args);
    }
    let migrate_only = matches!(cli.command, Command::Migrate);
    let store = open_store(&cli.global, !cli.global.no_migrate && !migrate_only).await?;
    if migrate_only {
        let applied = store.migrate().await?;
        println!(
            "database {} is up to date ({applied} migration{} applied)",
            redact(&database_url(&cli.global)),
            if applied == 1 { "" } else { "s" }
        );
        println!("next: metaengine entity create Invoice --description \"Customer invoices\"");
        return Ok(());
    }
    let access = AccessConfig::default();
    let actor = operator(&cli.global.as_user, &access);
    let services = Services::build(
        store,
        ServicesConfig {
            access,
            ..ServicesConfig::default()
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot load the models: {e}"))?;
    let ctx = Context { services, actor };
    let result = execute(&ctx, cli.command).await;
    // Audit events buffered by data commands are written before the process ends.
    ctx.services.shutdown().await;
    result
}

async fn execute(ctx: &Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Migrate | Command::Serve(_) | Command::Token(_) => Ok(()),
        Command::Tenant(cmd) => tenant::run(ctx, cmd).await,
        Command::Entity(cmd) => entity::run(ctx, cmd).await,
        Command::Version(cmd) => version::run(ctx, cmd).await,
        Command::Field(cmd) => field::run(ctx, cmd).await,
        Command::Validate { file, entity } => version::validate(ctx, file, entity.as_deref()).await,
        Command::Audit(args) => audit::run(ctx, args).await,
        Command::Snapshot(cmd) => snapshot::run(ctx, cmd).await,
        Command::Codegen(crate::cli::CodegenCommand::Typescript { out }) => {
            let module = metaengine_runtime::codegen::for_active_versions(
                &ctx.services.registry,
                &ctx.actor,
            )
            .await?;
            match out {
                Some(path) => {
                    std::fs::write(&path, module)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => print!("{module}"),
            }
            Ok(())
        }
        Command::Data(args) => data::run(ctx, args).await,
        Command::Policy(crate::cli::PolicyCommand::Check(args)) => policy::check(ctx, args).await,
        Command::Compile { entity, version } => {
            let model = ctx
                .services
                .registry
                .compiled(&ctx.actor, &entity, version.as_deref())
                .await?;
            crate::output::print_json(&model)
        }
    }
}
