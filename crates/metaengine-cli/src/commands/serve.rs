//! `metaengine serve`: resolve the settings (flags over environment over `--config` file), open
//! and migrate the database, build the services, print where to go next, and serve until SIGINT or
//! SIGTERM.

use std::time::Duration;

use anyhow::Context as _;
use metaengine_server::auth::{Claims, mint_hs256};
use metaengine_server::config::JwtKeyConfig;
use metaengine_server::{AppState, ServerConfig, Settings};

use crate::cli::{GlobalArgs, ServeArgs};
use crate::config::{audit_key, open_store_at, redact};

/// The settings the command line and environment give (clap reads both).
fn command_line_layer(global: &GlobalArgs, args: &ServeArgs) -> Settings {
    Settings {
        listen: args.listen.clone(),
        database_url: global.database_url.clone(),
        data_dir: global.data_dir_arg.clone(),
        pool_size: args.pool_size,
        jwt_secret: args.jwt_secret.clone().map(Into::into),
        jwt_algorithm: args.jwt_algorithm.clone(),
        jwt_public_key_file: args.jwt_public_key_file.clone(),
        redis_url: args.redis_url.clone(),
        body_limit: args.body_limit,
        json_max_depth: args.json_max_depth,
        max_page_size: args.max_page_size,
        max_page_bytes: args.max_page_bytes,
        request_timeout_ms: args.request_timeout_ms,
        max_concurrency: args.max_concurrency,
        max_connections: args.max_connections,
        header_read_timeout_ms: args.header_read_timeout_ms,
        idle_timeout_ms: args.idle_timeout_ms,
        shutdown_grace_ms: args.shutdown_grace_ms,
        realtime_max_subscribers: args.realtime_max_subscribers,
        realtime_retention: args.realtime_retention.clone(),
        audit_retention_days: args.audit_retention_days,
        audit_key: global.audit_key.clone().map(Into::into),
        precompile_on_startup: args.no_precompile.then_some(false),
        ..Settings::default()
    }
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = command_line_layer(global, &args);
    if let Some(path) = &args.config {
        settings = settings.or(Settings::from_toml_file(path)?);
    }
    let config = ServerConfig::resolve(settings)?;
    let key = audit_key(
        config.audit_key.as_ref().map(|k| k.expose()),
        &config.data_dir,
    )?;
    let store = open_store_at(
        &config.database_url,
        config.pool_size,
        !global.no_migrate,
        &key,
    )
    .await?;
    let state = AppState::build(store, &config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    let ui = (!args.no_ui).then(|| metaengine_ui::Ui::new(key.as_bytes()));
    print_banner(&config, &state, addr, ui.as_deref());
    let extra = match ui {
        Some(ui) => metaengine_ui::routes(&state, ui),
        None => axum::Router::new(),
    };
    metaengine_server::serve(listener, state, extra, metaengine_server::shutdown_signal())
        .await
        .context("the server stopped with an error")?;
    eprintln!("metaengine stopped; audit trail flushed");
    Ok(())
}

fn print_banner(
    config: &ServerConfig,
    state: &AppState,
    addr: std::net::SocketAddr,
    ui: Option<&metaengine_ui::Ui>,
) {
    let base = format!("http://{addr}");
    println!(
        "metaengine {} listening on {base}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  database         {}", redact(&config.database_url));
    for (key, value) in config.summary().into_iter().skip(1) {
        println!("  {key:<16} {value}");
    }
    println!(
        "  docs             {base}/openapi.json   health {base}/health   metrics {base}/metrics"
    );
    if let Some(ui) = ui {
        println!();
        println!("admin UI: open this one-time sign-in link (valid 10 minutes, usable once):");
        println!("  {}", ui.login_url(&base));
    }
    // A ready token only for the zero-configuration setup (secret in the data directory): a
    // configured secret or key belongs to a deployment whose logs should hold no admin token.
    let secret = match (&config.jwt, &state.local_secret) {
        (JwtKeyConfig::Hs256(None), Some(secret)) => secret,
        (JwtKeyConfig::Hs256(Some(_)), _) => {
            println!(
                "mint tokens with `metaengine token --user U --tenant T --roles admin` (same secret)"
            );
            return;
        }
        _ => {
            println!(
                "tokens are verified with the configured public key; mint them with your identity provider"
            );
            return;
        }
    };
    if state.secret_created {
        println!(
            "created a token secret in {} (first run)",
            config.data_dir.join("jwt-secret").display()
        );
    }
    let claims = Claims::new(
        "admin",
        config.platform_tenant.clone(),
        "default",
        vec![config.admin_role.clone()],
        Duration::from_secs(24 * 3600),
    );
    match mint_hs256(secret, &claims) {
        Ok(token) => {
            println!();
            println!(
                "an admin token for tenant `{}` (valid 24 h; more with `metaengine token --help`):",
                config.platform_tenant
            );
            println!("  export TOKEN={token}");
            println!("try:");
            println!("  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/meta/entities");
        }
        Err(e) => tracing::warn!(error = %e, "cannot mint a first admin token"),
    }
}
