//! `metaengine-bench`: measures `metaengine serve` against its physical limit, side by side.
//!
//! One run prepares the databases (PostgreSQL and/or SQLite, N Invoice rows over 100 tenants × 2
//! realms), starts the engine and the hand-written baseline ([`baseline`]) with the same pool
//! size, checks that both answer the two benchmarked requests identically, drives each with the
//! same load generator ([`load`]) in alternating runs (engine, baseline, engine, baseline, …),
//! then prints a table of medians and ratios and writes it as JSON (`target/bench/http.json`).
//! `./scripts/bench` builds everything in release mode and runs it.

mod baseline;
mod load;
mod prepare;
mod procs;
mod report;
mod sql;

/// The same allocator as the `metaengine` binary, so that the baseline's figures are the limit of
/// this stack as the engine ships it (and the load generator costs both sides alike).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::load::{LoadSpec, Workload};
use crate::prepare::{BENCH_REALM, BENCH_TENANT, Engine};
use crate::procs::Server;
use crate::report::{Comparison, Memory, Report, Run, Settings};

/// Measure `metaengine serve` against a hand-written axum + sqlx baseline.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the baseline (the harness starts it; secret from METAENGINE_JWT_SECRET).
    Baseline {
        /// Address to listen on.
        #[arg(long)]
        listen: String,
        /// `postgres://…` or `sqlite://…`.
        #[arg(long)]
        database_url: String,
        /// Database pool size.
        #[arg(long, default_value_t = 16)]
        pool_size: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Postgres,
    Sqlite,
    Both,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Invoice rows (over 100 tenants x 2 realms).
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before each run (not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Runs per side and operation (alternating engine, baseline, engine, …).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Which database(s).
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    backend: BackendChoice,
    /// Database pool size, the same for the engine and the baseline.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// Recreate the databases even when they already hold `--rows` rows.
    #[arg(long)]
    reprepare: bool,
    /// The `metaengine` binary.
    #[arg(
        long,
        env = "METAENGINE_BENCH_ENGINE",
        default_value = "target/release/metaengine"
    )]
    engine_bin: PathBuf,
    /// The PostgreSQL database to (re)create.
    #[arg(
        long,
        env = "METAENGINE_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/metaengine_bench"
    )]
    pg_url: String,
    /// Working directory: the SQLite file, the engine's data directory, server logs.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/bench/http.json")]
    out: PathBuf,
}

/// The list request both servers answer.
const LIST_PATH: &str = "/api/data/Invoice?filter%5Bstatus%5D%5Beq%5D=paid&orderBy=createdAt&orderDir=desc&pageSize=20&count=none";
/// The prefix of a get.
const GET_PREFIX: &str = "/api/data/Invoice";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("METAENGINE_LOG")
                // The bulk load is slow on purpose: not worth sqlx's slow-statement warning.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx::query=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Baseline {
            listen,
            database_url,
            pool_size,
        }) => {
            let secret = std::env::var("METAENGINE_JWT_SECRET")
                .context("the baseline needs METAENGINE_JWT_SECRET")?;
            baseline::serve(&listen, &database_url, pool_size, &secret).await
        }
        None => run(cli.run).await,
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Host name, CPUs and kernel of this machine.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("cpu model not reported", |(_, m)| m.trim())
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let mem = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().strip_suffix("kB"))
        .and_then(|k| k.trim().parse::<u64>().ok())
        .map_or_else(String::new, |k| {
            format!(", {:.0} GiB RAM", k as f64 / 1048576.0)
        });
    format!(
        "{} CPUs ({model}){mem}, Linux {}",
        cpus,
        read("/proc/sys/kernel/osrelease").trim()
    )
}

/// One backend's databases and servers.
struct Backend {
    name: &'static str,
    url: String,
    ids: Arc<Vec<String>>,
}

async fn prepare_backend(
    choice: &'static str,
    args: &RunArgs,
    engine: &Engine,
    work: &Path,
) -> anyhow::Result<Backend> {
    let started = Instant::now();
    let (url, prepared, ids) = match choice {
        "postgres" => {
            let prepared =
                prepare::prepare_postgres(engine, &args.pg_url, args.rows, args.reprepare).await?;
            (
                args.pg_url.clone(),
                prepared,
                prepare::pg_ids(&args.pg_url).await?,
            )
        }
        _ => {
            let path = work.join("sqlite").join("metaengine.db");
            let prepared =
                prepare::prepare_sqlite(engine, &path, args.rows, args.reprepare).await?;
            (
                prepare::sqlite_url(&path),
                prepared,
                prepare::sqlite_ids(&path).await?,
            )
        }
    };
    if prepared {
        eprintln!(
            "{choice}: prepared {} rows in {:.1} s",
            args.rows,
            started.elapsed().as_secs_f64()
        );
    } else {
        eprintln!(
            "{choice}: reusing the {} rows already there (--reprepare to rebuild)",
            args.rows
        );
    }
    if ids.is_empty() {
        bail!("{choice}: tenant {BENCH_TENANT} realm {BENCH_REALM} has no rows (use more --rows)");
    }
    Ok(Backend {
        name: choice,
        url,
        ids: Arc::new(ids),
    })
}

async fn start_servers(
    b: &Backend,
    args: &RunArgs,
    engine: &Engine,
    work: &Path,
) -> anyhow::Result<(Server, Server)> {
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    let pool = args.pool_size.to_string();

    let addr: SocketAddr = format!("127.0.0.1:{}", procs::free_port()?).parse()?;
    let mut cmd = tokio::process::Command::new(&engine.bin);
    cmd.arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--database-url")
        .arg(&b.url)
        .arg("--data-dir")
        .arg(&engine.data_dir)
        .arg("--pool-size")
        .arg(&pool)
        .env("METAENGINE_JWT_SECRET", &engine.secret)
        .env("METAENGINE_LOG", "warn");
    let engine_server = Server::start(
        "engine",
        cmd,
        addr,
        &logs.join(format!("engine-{}.log", b.name)),
    )
    .await?;

    let addr: SocketAddr = format!("127.0.0.1:{}", procs::free_port()?).parse()?;
    let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
    cmd.arg("baseline")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--database-url")
        .arg(&b.url)
        .arg("--pool-size")
        .arg(&pool)
        .env("METAENGINE_JWT_SECRET", &engine.secret)
        .env("METAENGINE_LOG", "warn");
    let baseline_server = Server::start(
        "baseline",
        cmd,
        addr,
        &logs.join(format!("baseline-{}.log", b.name)),
    )
    .await?;
    Ok((engine_server, baseline_server))
}

/// Both servers must answer both requests with the same JSON, or the comparison means nothing.
async fn check_same_answers(
    engine: &Server,
    baseline: &Server,
    token: &str,
    id: &str,
) -> anyhow::Result<()> {
    for path in [format!("{GET_PREFIX}/{id}"), LIST_PATH.to_owned()] {
        let mut answers = Vec::new();
        for server in [engine, baseline] {
            let (status, body) = load::fetch(server.addr, Some(token), &path)
                .await
                .map_err(anyhow::Error::msg)?;
            let text = String::from_utf8_lossy(&body).into_owned();
            if status != 200 {
                bail!(
                    "the {} answered {status} to GET {path}: {text}",
                    server.name
                );
            }
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("the {} answered GET {path} with no JSON", server.name))?;
            answers.push((value, text));
        }
        if let [(e, et), (b, bt)] = answers.as_slice()
            && e != b
        {
            bail!(
                "the engine and the baseline answer GET {path} differently:\n engine:   {}\n baseline: {}",
                et.chars().take(600).collect::<String>(),
                bt.chars().take(600).collect::<String>()
            );
        }
    }
    Ok(())
}

async fn measure(
    b: &Backend,
    args: &RunArgs,
    engine: &Engine,
    work: &Path,
) -> anyhow::Result<(Vec<Comparison>, Memory)> {
    let token = engine.token(&b.url, BENCH_TENANT, BENCH_REALM).await?;
    let (engine_server, baseline_server) = start_servers(b, args, engine, work).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut memory = Memory {
        backend: b.name.to_owned(),
        engine_idle_kib: engine_server.rss_kib(),
        baseline_idle_kib: baseline_server.rss_kib(),
        ..Memory::default()
    };
    let first = b.ids.first().map(String::as_str).unwrap_or_default();
    check_same_answers(&engine_server, &baseline_server, &token, first).await?;
    eprintln!(
        "{}: engine and baseline give the same answers; {} ids in {BENCH_TENANT}/{BENCH_REALM}",
        b.name,
        b.ids.len()
    );
    let spec = LoadSpec {
        connections: args.connections,
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        duration: Duration::from_secs_f64(args.duration.max(0.1)),
    };
    let operations = [
        (
            "get",
            Workload::Get {
                prefix: GET_PREFIX.to_owned(),
                ids: b.ids.clone(),
            },
        ),
        (
            "list",
            Workload::Fixed {
                path: LIST_PATH.to_owned(),
            },
        ),
    ];
    let mut results = Vec::new();
    for (op, workload) in &operations {
        let (mut e_runs, mut b_runs) = (Vec::new(), Vec::new());
        for round in 1..=args.rounds.max(1) {
            for server in [&engine_server, &baseline_server] {
                let r = load::run(server.addr, &token, workload, spec).await?;
                let run = Run::from(&r);
                eprintln!(
                    "{} {op} round {round} {:<8}: {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}{}",
                    b.name,
                    server.name,
                    run.rps,
                    run.p50_ms,
                    run.p99_ms,
                    run.errors,
                    run.first_error
                        .as_deref()
                        .map(|e| format!(" (first: {e})"))
                        .unwrap_or_default()
                );
                if server.name == "engine" {
                    e_runs.push(run);
                } else {
                    b_runs.push(run);
                }
            }
        }
        results.push(Comparison::new(b.name, op, e_runs, b_runs));
    }
    memory.engine_after_kib = engine_server.rss_kib();
    memory.baseline_after_kib = baseline_server.rss_kib();
    engine_server.stop().await?;
    baseline_server.stop().await?;
    Ok((results, memory))
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let work = absolute(&args.work_dir)?;
    std::fs::create_dir_all(&work)?;
    let engine = Engine {
        bin: absolute(&args.engine_bin)?,
        data_dir: work.join("engine-data"),
        secret: format!(
            "metaengine-bench-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ),
    };
    if !engine.bin.exists() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p metaengine-cli` (./scripts/bench does)",
            engine.bin.display()
        );
    }
    let backends: &[&'static str] = match args.backend {
        BackendChoice::Postgres => &["postgres"],
        BackendChoice::Sqlite => &["sqlite"],
        BackendChoice::Both => &["postgres", "sqlite"],
    };
    let mut results = Vec::new();
    let mut memory = Vec::new();
    let mut scope_rows = 0;
    for choice in backends {
        let b = prepare_backend(choice, &args, &engine, &work).await?;
        scope_rows = b.ids.len();
        let (r, m) = measure(&b, &args, &engine, &work).await?;
        results.extend(r);
        memory.push(m);
    }
    let report = Report {
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        machine: machine(),
        settings: Settings {
            rows: args.rows,
            connections: args.connections,
            duration_s: args.duration,
            warmup_s: args.warmup,
            rounds: args.rounds.max(1),
            pool_size: args.pool_size,
            tenant: BENCH_TENANT.to_owned(),
            realm: BENCH_REALM.to_owned(),
            scope_rows,
        },
        results,
        memory,
    };
    println!(
        "\nmetaengine vs baseline: {} rows, {} connections, {} s x {} rounds (medians), pool {}, {}",
        report.settings.rows,
        report.settings.connections,
        report.settings.duration_s,
        report.settings.rounds,
        report.settings.pool_size,
        report.machine
    );
    println!("{}", report::table(&report.results));
    print!("{}", report::memory_lines(&report.memory));
    let out = absolute(&args.out)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("JSON: {}", out.display());
    Ok(())
}
