//! The command line, as clap parses it. The doc comments here are `--help` text, written for a
//! terminal (`[default: …]`, `<data dir>`), not rustdoc markup.
#![cfg_attr(
    doc,
    expect(
        rustdoc::broken_intra_doc_links,
        rustdoc::invalid_html_tags,
        reason = "the doc comments are clap's --help text"
    )
)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// metaengine: define entities at run time, version and activate their schemas, audit every change.
#[derive(Debug, Parser)]
#[command(name = "metaengine", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Database URL: `sqlite://path/to/file.db` or `postgres://user@host:5432/db`
    /// [default: sqlite://<data dir>/metaengine.db]
    #[arg(long, env = "METAENGINE_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Directory for the default SQLite database and local secrets [default: ./metaengine-data]
    // (read it with `GlobalArgs::data_dir`, which applies the default)
    #[arg(long = "data-dir", env = "METAENGINE_DATA_DIR", global = true)]
    pub data_dir_arg: Option<PathBuf>,
    /// User id recorded in the audit trail for changes made from the command line.
    #[arg(
        long = "as-user",
        env = "METAENGINE_USER",
        default_value = "cli",
        global = true
    )]
    pub as_user: String,
    /// Do not apply pending migrations before running the command.
    #[arg(long, global = true)]
    pub no_migrate: bool,
    /// Key that seals audit rows until they are chained (SPEC §16); the same on every instance
    /// and command line of one database [default: the data directory's `audit-key` file]
    #[arg(
        long,
        env = "METAENGINE_AUDIT_KEY",
        hide_env_values = true,
        global = true
    )]
    pub audit_key: Option<String>,
}

impl GlobalArgs {
    /// The data directory in force: the flag or variable, else [`DEFAULT_DATA_DIR`].
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir_arg
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

/// The data directory when neither flag, variable nor configuration file names one.
pub use metaengine_server::config::DEFAULT_DATA_DIR;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server: the REST API, OpenAPI, health and metrics (SPEC §10).
    Serve(Box<ServeArgs>),
    /// Apply the engine's migrations (re-running is a no-op).
    Migrate,
    /// Create, list, show, update and delete entities.
    #[command(subcommand)]
    Entity(EntityCommand),
    /// Create, list, show, update, activate, deactivate and delete versions of an entity.
    #[command(subcommand)]
    Version(VersionCommand),
    /// Add, update and remove fields of a version that has never been active.
    #[command(subcommand)]
    Field(FieldCommand),
    /// Validate a schema document and print every problem with its JSON pointer.
    Validate {
        /// Schema file (`-` or nothing for stdin).
        file: Option<PathBuf>,
        /// Entity the schema is for (for self-references and policy resources); without it,
        /// a policy's `resource` is not checked against a name.
        #[arg(long)]
        entity: Option<String>,
    },
    /// Query the audit trail, newest first; verify its hash chains; purge it by retention.
    Audit(AuditArgs),
    /// Metadata as code (SPEC §17): export the entities, versions and tenants as files, show
    /// what applying such files would change, apply them.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Generate typed clients from the active versions (SPEC §19).
    #[command(subcommand)]
    Codegen(CodegenCommand),
    /// Ask the policy gate: may this user do this to this entity (and record)?
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// List, read, create, update, delete and export the records of an active entity.
    Data(DataArgs),
    /// Print the compiled runtime model of a version (the active one by default) as JSON.
    Compile {
        entity: String,
        /// Version label; omit for the active version.
        version: Option<String>,
    },
    /// Mint a signed token (HS256) for local use; prints the token alone, so that
    /// `TOKEN=$(metaengine token --user alice --roles admin)` works. Needs no database.
    Token(TokenArgs),
    /// Create, list, suspend and reactivate tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
}

/// `metaengine token …`: the claims of the token to mint.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// User id (`sub`).
    #[arg(long)]
    pub user: String,
    /// Tenant of the user (`tenant_id`).
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Realm of the user (`realm_id`).
    #[arg(long, default_value = "default")]
    pub realm: String,
    /// Roles of the user, comma-separated (e.g. `admin` or `user,manager`).
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Lifetime of the token in seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=315_360_000))]
    pub ttl: u64,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create an active tenant (id: lowercase letters, digits, `_` and `-`).
    Create {
        id: String,
        /// Display name [default: the id].
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Suspend a tenant: its requests are refused (403) until it is activated again.
    Suspend { id: String },
    /// Reactivate a suspended tenant.
    Activate { id: String },
}

#[derive(Debug, Subcommand)]
pub enum EntityCommand {
    /// Create an entity (PascalCase name).
    Create {
        name: String,
        #[arg(long, short)]
        description: Option<String>,
    },
    /// List entities.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show one entity and its versions.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an entity's description.
    Update {
        name: String,
        /// New description (omit to clear it).
        #[arg(long, short)]
        description: Option<String>,
    },
    /// Delete an entity, all its versions and its data table.
    Delete {
        name: String,
        /// Delete even when the entity's table holds rows (they are dropped with it).
        #[arg(long)]
        force: bool,
    },
    /// Drop the columns (and data) that fields removed by later versions left hidden.
    Prune {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum VersionCommand {
    /// Create a version from a schema document (a file, or stdin).
    Create {
        entity: String,
        version: String,
        /// Schema file (`-` or nothing for stdin).
        file: Option<PathBuf>,
    },
    /// List the versions of an entity.
    List {
        entity: String,
        #[arg(long)]
        json: bool,
    },
    /// Show one version with its schema (JSON).
    Show {
        entity: String,
        /// Version label; omit to show the active version.
        version: Option<String>,
    },
    /// Replace the schema of a version that has never been active.
    Update {
        entity: String,
        version: String,
        /// Schema file (`-` or nothing for stdin).
        file: Option<PathBuf>,
    },
    /// Make a version the active one, migrating the entity's table.
    Activate {
        entity: String,
        version: String,
        /// Show the migration plan and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Deactivate the active version (the entity then has no active version).
    Deactivate { entity: String, version: String },
    /// Delete a version that is not active.
    Delete { entity: String, version: String },
}

#[derive(Debug, Subcommand)]
pub enum FieldCommand {
    /// Add a field (a JSON field definition from a file or stdin).
    Add {
        entity: String,
        version: String,
        file: Option<PathBuf>,
    },
    /// Change a field's options (a partial JSON definition from a file or stdin; `null` removes).
    Update {
        entity: String,
        version: String,
        field: String,
        file: Option<PathBuf>,
    },
    /// Remove a field.
    Remove {
        entity: String,
        version: String,
        field: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the decision of the active version's policies and the policy that decided it;
    /// exits with status 1 when denied.
    Check(PolicyCheckArgs),
}

#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// Entity name.
    #[arg(long)]
    pub entity: String,
    /// `create`, `read`, `update` or `delete`.
    #[arg(long)]
    pub action: String,
    /// User id (`context.userId`, `user.id`).
    #[arg(long)]
    pub user: String,
    /// Roles of the user, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "")]
    pub roles: Vec<String>,
    /// Tenant of the user.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Realm of the user.
    #[arg(long, default_value = "default")]
    pub realm: String,
    /// A record as a JSON object (fields by name, system fields such as `createdBy` included).
    #[arg(long)]
    pub record: Option<PathBuf>,
}

/// `metaengine data …`: the data API, acting as the given user.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Tenant to act in.
    #[arg(long, default_value = "default", global = true)]
    pub tenant: String,
    /// Realm to act in.
    #[arg(long, default_value = "default", global = true)]
    pub realm: String,
    /// User to act as [default: the value of --as-user].
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Roles of the user, comma-separated (`admin` bypasses policies).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = metaengine_runtime::AccessConfig::DEFAULT_ADMIN_ROLE,
        global = true
    )]
    pub roles: Vec<String>,
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// List one page of records.
    List {
        entity: String,
        #[command(flatten)]
        query: DataQueryArgs,
        /// Field to order by (a field name, `createdAt`, `updatedAt` or `id`).
        #[arg(long)]
        order_by: Option<String>,
        /// Order descending.
        #[arg(long)]
        desc: bool,
        /// Page number, from 1 (ignored with --after).
        #[arg(long)]
        page: Option<u32>,
        /// Rows per page (at most 100).
        #[arg(long)]
        page_size: Option<u32>,
        /// Fields to return, comma-separated.
        #[arg(long, value_delimiter = ',')]
        fields: Option<Vec<String>>,
        /// Cursor of the previous page.
        #[arg(long)]
        after: Option<String>,
        /// Do not count the total.
        #[arg(long)]
        no_count: bool,
        /// Related records to add under each record's `expand` (comma-separated):
        /// `customerId`, `customerId.accountManagerId`, `Invoice_via_customerId`.
        #[arg(long, value_delimiter = ',')]
        expand: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one record as JSON.
    Get {
        entity: String,
        id: String,
        /// Related records to add under the record's `expand` (comma-separated).
        #[arg(long, value_delimiter = ',')]
        expand: Vec<String>,
    },
    /// Print how many records match the filters.
    Count {
        entity: String,
        #[command(flatten)]
        query: DataQueryArgs,
    },
    /// Create a record from a JSON object (a file, or stdin).
    Create {
        entity: String,
        /// Record file (`-` or nothing for stdin).
        file: Option<PathBuf>,
    },
    /// Update a record with a (partial) JSON object (a file, or stdin).
    Update {
        entity: String,
        id: String,
        /// Changes file (`-` or nothing for stdin).
        file: Option<PathBuf>,
        /// Only if the record is at this row version.
        #[arg(long)]
        if_match: Option<i64>,
    },
    /// Delete a record.
    Delete {
        entity: String,
        id: String,
        /// Only if the record is at this row version.
        #[arg(long)]
        if_match: Option<i64>,
    },
    /// Write every readable record as NDJSON to stdout.
    Export { entity: String },
    /// Print the entity's changes as they happen (the realtime feed, SPEC §14), one JSON line
    /// per event: `{"id", "event", "data"}`. Reconnects by itself; Ctrl-C ends it.
    Watch {
        entity: String,
        #[command(flatten)]
        query: DataQueryArgs,
        /// Start after this event id (replays the changes since; `reset` when it is too old).
        #[arg(long)]
        last_event_id: Option<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Import records from NDJSON (one JSON object per line) or CSV (a header row of field
    /// names), validated like `create`, written in batches; bad rows are reported by line and
    /// skipped (exit status 1 if any).
    Import {
        entity: String,
        /// The file (`-` for stdin).
        file: PathBuf,
        /// `ndjson` or `csv` [default: from the extension, `.csv` is CSV, else NDJSON].
        #[arg(long, value_parser = ["ndjson", "csv"])]
        format: Option<String>,
        /// Check every row and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rows per batch (one transaction and one audit row each).
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
    },
}

#[derive(Debug, Args)]
pub struct DataQueryArgs {
    /// Filter `field:op:value` (e.g. `status:eq:paid`); repeatable.
    #[arg(long = "filter")]
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Page number, from 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub page: u32,
    /// Rows per page (at most 100).
    #[arg(
        long,
        default_value_t = metaengine_store::PageRequest::DEFAULT_SIZE,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(metaengine_store::PageRequest::MAX_SIZE))
    )]
    pub page_size: u32,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    /// Without a subcommand: query the trail with the flags below.
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Event types, comma-separated (e.g. `meta.version.activate,policy.deny`).
    #[arg(long, value_delimiter = ',')]
    pub event_type: Vec<metaengine_store::EventType>,
    /// Acting user.
    #[arg(long)]
    pub user: Option<String>,
    /// Acting tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Resource (entity name or tenant id).
    #[arg(long)]
    pub resource: Option<String>,
    /// `success` or `failure`.
    #[arg(long)]
    pub result: Option<metaengine_store::AuditResult>,
    /// From this time, inclusive (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Until this time, exclusive (RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chains (every tenant's, or one's): exit 1 naming the first broken row.
    Verify {
        /// Only this tenant's chain.
        #[arg(long)]
        tenant: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete the rows older than the retention, leaving one `audit.purge` row per tenant.
    Purge {
        /// Days rows are kept (0 keeps everything).
        #[arg(
            long,
            env = "METAENGINE_AUDIT_RETENTION_DAYS",
            default_value_t = metaengine_server::config::DEFAULT_AUDIT_RETENTION_DAYS
        )]
        retention_days: u32,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}

/// Settings of `metaengine serve`. Each flag also reads its `METAENGINE_*` variable; flags win over
/// variables, which win over the `--config` file's keys (same names in snake_case).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file of settings (keys: listen, database_url, data_dir, pool_size, jwt_secret, …).
    #[arg(long, env = "METAENGINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "METAENGINE_LISTEN")]
    pub listen: Option<String>,
    /// Connections in the database pool [default: 16 on PostgreSQL, 8 on SQLite].
    #[arg(long, env = "METAENGINE_POOL_SIZE")]
    pub pool_size: Option<u32>,
    /// HS256 secret; when unset, one is created in the data directory and reused.
    #[arg(long, env = "METAENGINE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Token algorithm: HS256 [default], RS256 or ES256.
    #[arg(long, env = "METAENGINE_JWT_ALGORITHM")]
    pub jwt_algorithm: Option<String>,
    /// PEM file of the public key for RS256/ES256.
    #[arg(long, env = "METAENGINE_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Redis URL of the shared compiled-model cache (optional).
    #[arg(long, env = "METAENGINE_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "METAENGINE_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Deepest nesting of a JSON body [default: 32].
    #[arg(long, env = "METAENGINE_JSON_MAX_DEPTH")]
    pub json_max_depth: Option<usize>,
    /// Largest page size of a list [default: 100].
    #[arg(long, env = "METAENGINE_MAX_PAGE_SIZE")]
    pub max_page_size: Option<u32>,
    /// Most bytes of records in one list page; a page ends early with its nextCursor
    /// [default: 4194304].
    #[arg(long, env = "METAENGINE_MAX_PAGE_BYTES")]
    pub max_page_bytes: Option<usize>,
    /// Longest time a request may take, in milliseconds [default: 30000].
    #[arg(long, env = "METAENGINE_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Most requests served at once; more are answered 429 [default: 1024].
    #[arg(long, env = "METAENGINE_MAX_CONCURRENCY")]
    pub max_concurrency: Option<usize>,
    /// Most connections open at once; more wait in the backlog [default: 4096, fewer under a
    /// low `ulimit -n`].
    #[arg(long, env = "METAENGINE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Time a client has to send a request head, also between kept-alive requests, in
    /// milliseconds [default: 10000].
    #[arg(long, env = "METAENGINE_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// Time a connection may stay silent while no request is handled, in milliseconds
    /// [default: 60000].
    #[arg(long, env = "METAENGINE_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Time shutdown waits for in-flight requests before cutting them, in milliseconds
    /// [default: 10000].
    #[arg(long, env = "METAENGINE_SHUTDOWN_GRACE_MS")]
    pub shutdown_grace_ms: Option<u64>,
    /// Most realtime subscribers at once; more are answered 503 [default: 10000].
    #[arg(long, env = "METAENGINE_REALTIME_MAX_SUBSCRIBERS")]
    pub realtime_max_subscribers: Option<usize>,
    /// How long changes are kept for realtime subscribers to resume (`90m`, `24h`, `7d`)
    /// [default: 24h].
    #[arg(long, env = "METAENGINE_REALTIME_RETENTION")]
    pub realtime_retention: Option<String>,
    /// Days audit rows are kept; older ones are purged hourly (0 keeps everything)
    /// [default: 90].
    #[arg(long, env = "METAENGINE_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u32>,
    /// Do not compile the active entities before accepting requests.
    #[arg(long)]
    pub no_precompile: bool,
    /// Do not serve the admin UI at `/_/`.
    #[arg(long, env = "METAENGINE_NO_UI")]
    pub no_ui: bool,
}

/// `metaengine snapshot …`
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write the metadata under DIR: `entities/<Entity>/entity.json`,
    /// `entities/<Entity>/versions/<version>.json` and `tenants.json` (DIR/entities is replaced).
    Export {
        /// The directory (created when missing).
        dir: PathBuf,
    },
    /// Print what applying DIR would do, with the migration plans; exit 0 when nothing would
    /// change, 2 when something would, 1 on error.
    Diff {
        /// The snapshot's directory.
        dir: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply DIR step by step (each step audited): create the missing tenants, entities and
    /// versions, change what differs, activate the versions it names. Applying it again changes
    /// nothing.
    Apply {
        /// The snapshot's directory.
        dir: PathBuf,
        /// Only print what would be done.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `metaengine codegen …`
#[derive(Debug, Subcommand)]
pub enum CodegenCommand {
    /// One TypeScript module for the active versions: record, create and update types, Zod
    /// schemas, the `expand` shapes, a typed fetch client and a Kysely-style `DB` interface.
    Typescript {
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}
