//! `metaengine-bench`: measures `metaengine serve` against its physical limit, side by side.
//!
//! One run prepares the databases (PostgreSQL and/or SQLite: N invoices over 100 tenants × 2
//! realms written through the engine's own API, then copied into the baseline's own table;
//! [`prepare`]), starts the engine and the hand-written baseline ([`baseline`]) with the same pool
//! size, checks that both answer the benchmarked reads identically, drives each with the same
//! load generator ([`load`]) in alternating runs (engine, baseline, engine, baseline, …), then
//! prints a table of medians and ratios and writes it as JSON (`target/bench/http.json`).
//! `--growth` measures instead one tenant growing to 10k, 100k and 1M rows.
//! `./scripts/bench` builds everything in release mode and runs it.

mod baseline;
mod governance;
mod load;
mod prepare;
mod procs;
mod realtime;
mod relations;
mod report;
mod snapshot;
mod sql;
mod ui;

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
use crate::prepare::{BENCH_REALM, BENCH_TENANT, Engine, Target, WRITE_TENANT};
use crate::procs::Server;
use crate::report::{Comparison, CpuSpent, Memory, Report, Run, Settings};

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
    /// Serve the realtime limit (a broadcast SSE server without database; the harness starts
    /// it; secret from METAENGINE_JWT_SECRET).
    Broadcast {
        /// Address to listen on.
        #[arg(long)]
        listen: String,
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
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// The operations to measure, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "get,list,list-count,create,batch"
    )]
    ops: Vec<Op>,
    /// Creates per request of the `batch` operation.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Measure the growth curve instead: one tenant holding each of --growth-sizes rows in turn
    /// (a database of its own, always rebuilt), get and the lists at each size.
    #[arg(long)]
    growth: bool,
    /// Measure relations instead (issue 14): 1,000 customers with 100 invoices each in one
    /// tenant (a database of its own, always rebuilt); a page of 20 invoices with their
    /// customer and a page of 20 customers with their invoices, against a hand-written join.
    #[arg(long)]
    relations: bool,
    /// Measure the realtime feed instead (issue 15): 1,000 SSE subscribers over 10 tenants
    /// while 500 creates per second are spread over them, against a hand-written broadcast
    /// server (a database of its own, always rebuilt).
    #[arg(long)]
    realtime: bool,
    /// Measure governance instead (issue 16), in process: --audit-rows audit rows chained
    /// through the batched writer, their verification, and a page of 20 with field permissions
    /// against the same page without (a database of its own, always rebuilt).
    #[arg(long)]
    governance: bool,
    /// Measure metadata as code instead (issue 18), in process: export of 100 entities x 5
    /// versions to files, their apply to an empty database, and the apply again (databases of
    /// their own, always rebuilt).
    #[arg(long)]
    snapshot: bool,
    /// Measure the admin UI instead (issue 17), in process: the server time of a grid of 20,
    /// an entity page, a version page and an audit page of 50 over 10,000 records, and the
    /// gzip size of the UI (databases of their own, always rebuilt).
    #[arg(long)]
    ui: bool,
    /// Audit rows of the governance benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    audit_rows: u64,
    /// The PostgreSQL database of the governance benchmark (always recreated).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/metaengine_bench_governance"
    )]
    governance_pg_url: String,
    /// The PostgreSQL database of the realtime benchmark (always recreated).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/metaengine_bench_realtime"
    )]
    realtime_pg_url: String,
    /// The PostgreSQL database of the relations benchmark (always recreated).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/metaengine_bench_relations"
    )]
    relations_pg_url: String,
    /// Rows of the growing tenant at each step.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    growth_sizes: Vec<u64>,
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
    /// Keep the databases of an earlier run that hold `--rows` rows instead of recreating them
    /// (faster, but the audit trail and the change log keep every write of the earlier runs,
    /// which moved SQLite's create ratio by a third over a day's runs).
    #[arg(long)]
    reuse: bool,
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
    /// The PostgreSQL database of the growth curve (always recreated).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/metaengine_bench_growth"
    )]
    growth_pg_url: String,
    /// Working directory: the SQLite file, the engine's data directory, server logs.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/bench/http.json")]
    out: PathBuf,
}

/// A measured operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Op {
    /// Get by id (ids drawn at random from the tenant and realm).
    Get,
    /// A page of 20 paid invoices, latest due date first, `count=none`.
    List,
    /// The same page with its total.
    ListCount,
    /// One create.
    Create,
    /// `POST /api/data/batch` of --batch-size creates.
    Batch,
    /// `--relations`: a page of 20 paid invoices with `expand=customerId`.
    ListExpand,
    /// `--relations`: a page of 20 customers with `expand=Invoice_via_customerId`.
    Reverse,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::List => "list",
            Op::ListCount => "list-count",
            Op::Create => "create",
            Op::Batch => "batch",
            Op::ListExpand => "list-expand",
            Op::Reverse => "reverse",
        }
    }
}

/// The list request both servers answer, without its total.
const LIST_PATH: &str = "/api/data/Invoice?filter%5Bstatus%5D%5Beq%5D=paid&orderBy=dueDate&orderDir=desc&pageSize=20&count=none";
/// The same with its total (`count=exact` is the default).
const LIST_COUNT_PATH: &str =
    "/api/data/Invoice?filter%5Bstatus%5D%5Beq%5D=paid&orderBy=dueDate&orderDir=desc&pageSize=20";
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
        Some(Command::Broadcast { listen }) => realtime::serve_limit(&listen).await,
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

/// Writes `runs` as pretty JSON next to `--out`, named `file`, and prints where.
fn save_json(bench: &Bench, file: &str, runs: &impl serde::Serialize) -> anyhow::Result<()> {
    let out = absolute(&bench.args.out)?.with_file_name(file);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(runs)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("JSON: {}", out.display());
    Ok(())
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

/// The engine's binary and settings, the work directory, and what every run shares.
struct Bench {
    args: RunArgs,
    engine: Engine,
    work: PathBuf,
    /// Makes this run's invoice numbers unique against earlier runs' (base 36 seconds).
    nonce: String,
}

impl Bench {
    async fn start_servers(&self, target: &Target) -> anyhow::Result<(Server, Server)> {
        let engine = self.start_engine(target).await?;
        let logs = self.work.join("logs");
        let pool = self.args.pool_size.to_string();
        let url = target.url();
        let addr: SocketAddr = format!("127.0.0.1:{}", procs::free_port()?).parse()?;
        let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
        cmd.arg("baseline")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--database-url")
            .arg(&url)
            .arg("--pool-size")
            .arg(&pool)
            .env("METAENGINE_JWT_SECRET", &self.engine.secret)
            .env("METAENGINE_LOG", "warn");
        let baseline = Server::start(
            "baseline",
            cmd,
            addr,
            &logs.join(format!("baseline-{}.log", target.name())),
        )
        .await?;
        Ok((engine, baseline))
    }

    /// `metaengine serve` over `target`, with the benchmark's pool size and secret.
    async fn start_engine(&self, target: &Target) -> anyhow::Result<Server> {
        let logs = self.work.join("logs");
        std::fs::create_dir_all(&logs)?;
        let pool = self.args.pool_size.to_string();
        let url = target.url();

        let addr: SocketAddr = format!("127.0.0.1:{}", procs::free_port()?).parse()?;
        let mut cmd = tokio::process::Command::new(&self.engine.bin);
        cmd.arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--database-url")
            .arg(&url)
            .arg("--data-dir")
            .arg(&self.engine.data_dir)
            .arg("--pool-size")
            .arg(&pool)
            .env("METAENGINE_JWT_SECRET", &self.engine.secret)
            .env("METAENGINE_LOG", "warn");
        Server::start(
            "engine",
            cmd,
            addr,
            &logs.join(format!("engine-{}.log", target.name())),
        )
        .await
    }

    fn spec(&self) -> LoadSpec {
        LoadSpec {
            connections: self.args.connections,
            warmup: Duration::from_secs_f64(self.args.warmup.max(0.0)),
            duration: Duration::from_secs_f64(self.args.duration.max(0.1)),
        }
    }

    /// Runs `ops` against both servers, alternating sides, `--rounds` times each; reads as
    /// `token` (ids from `ids`), writes as `write_token`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per mode; a struct would only rename them"
    )]
    async fn measure(
        &self,
        label: &str,
        servers: (&Server, &Server),
        token: &str,
        write_token: &str,
        ids: &Arc<Vec<String>>,
        ops: &[Op],
        results: &mut Vec<Comparison>,
    ) -> anyhow::Result<()> {
        for op in ops {
            let (workload, token) = match op {
                Op::Get => (
                    Workload::Get {
                        prefix: GET_PREFIX.to_owned(),
                        ids: ids.clone(),
                    },
                    token,
                ),
                Op::List => (
                    Workload::Fixed {
                        path: LIST_PATH.to_owned(),
                    },
                    token,
                ),
                Op::ListCount => (
                    Workload::Fixed {
                        path: LIST_COUNT_PATH.to_owned(),
                    },
                    token,
                ),
                Op::ListExpand => (
                    Workload::Fixed {
                        path: relations::INVOICES_PATH.to_owned(),
                    },
                    token,
                ),
                Op::Reverse => (
                    Workload::Fixed {
                        path: relations::CUSTOMERS_PATH.to_owned(),
                    },
                    token,
                ),
                Op::Create | Op::Batch => (
                    Workload::Fixed {
                        path: String::new(),
                    },
                    write_token,
                ),
            };
            let per_request = if *op == Op::Batch {
                self.args.batch_size.max(1)
            } else {
                1
            };
            let (mut e_runs, mut b_runs) = (Vec::new(), Vec::new());
            for round in 1..=self.args.rounds.max(1) {
                for server in [servers.0, servers.1] {
                    // Unique per run of the harness, operation, side and round.
                    let tag = format!(
                        "W{}{}{}{round}",
                        self.nonce,
                        if *op == Op::Batch { 'b' } else { 'c' },
                        server.name.chars().next().unwrap_or('x')
                    );
                    let workload = match op {
                        Op::Create => Workload::Create { tag },
                        Op::Batch => Workload::Batch {
                            tag,
                            size: per_request,
                        },
                        _ => workload.clone(),
                    };
                    let before = cpu_now(server);
                    let r = load::run(server.addr, token, &workload, self.spec()).await?;
                    let after = cpu_now(server);
                    let run = Run::new(
                        &r,
                        CpuSpent {
                            server: after.server - before.server,
                            database: after.database - before.database,
                            load: after.load - before.load,
                        },
                    );
                    eprintln!(
                        "{label} {} round {round} {:<8}: {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  \
                         CPU/req µs server {:>4.0} db {:>4.0} load {:>4.0}  errors {}{}",
                        op.name(),
                        server.name,
                        run.rps,
                        run.p50_ms,
                        run.p99_ms,
                        run.server_cpu_us,
                        run.database_cpu_us,
                        run.load_cpu_us,
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
            let name = if per_request > 1 {
                format!("batch of {per_request}")
            } else {
                op.name().to_owned()
            };
            results.push(Comparison::new(label, &name, e_runs, b_runs).per_request(per_request));
        }
        Ok(())
    }
}

/// CPU seconds so far of `server`, the PostgreSQL processes and this harness.
fn cpu_now(server: &Server) -> CpuSpent {
    CpuSpent {
        server: server.cpu_seconds().unwrap_or(0.0),
        database: procs::postgres_cpu_seconds(),
        load: procs::cpu_seconds(std::process::id()).unwrap_or(0.0),
    }
}

/// Both servers must answer the reads with the same JSON, or the comparison means nothing.
async fn check_same_answers(
    engine: &Server,
    baseline: &Server,
    token: &str,
    id: &str,
) -> anyhow::Result<()> {
    let paths = [
        format!("{GET_PREFIX}/{id}"),
        LIST_PATH.to_owned(),
        LIST_COUNT_PATH.to_owned(),
    ];
    check_same(engine, baseline, token, &paths).await
}

/// [`check_same_answers`] for `paths`.
async fn check_same(
    engine: &Server,
    baseline: &Server,
    token: &str,
    paths: &[String],
) -> anyhow::Result<()> {
    for path in paths {
        let mut answers = Vec::new();
        for server in [engine, baseline] {
            let (status, body) = load::fetch(server.addr, Some(token), path)
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
                et.chars().take(900).collect::<String>(),
                bt.chars().take(900).collect::<String>()
            );
        }
    }
    Ok(())
}

/// The main comparison on one backend: the data set prepared (or reused), then every `--ops`.
async fn compare(
    bench: &Bench,
    target: &Target,
    results: &mut Vec<Comparison>,
) -> anyhow::Result<(Memory, usize)> {
    let args = &bench.args;
    let name = target.name();
    let reuse = args.reuse && target.rows("t%").await == Some((args.rows, args.rows));
    if !reuse {
        target.recreate().await?;
        bench.engine.activate_invoice(&target.url()).await?;
    }
    let (engine, baseline) = bench.start_servers(target).await?;
    if reuse {
        eprintln!(
            "{name}: reusing the {} rows already there (--reuse)",
            args.rows
        );
    } else {
        let mut tenants: Vec<String> = (0..prepare::TENANTS).map(|t| format!("t{t:03}")).collect();
        tenants.push(WRITE_TENANT.to_owned());
        prepare::create_tenants(&bench.engine, engine.addr, &tenants).await?;
        let rate = prepare::fill(&bench.engine, engine.addr, prepare::spread(args.rows)).await?;
        eprintln!(
            "{name}: {} rows written through POST /api/data/batch at {rate:.0} rows/s",
            args.rows
        );
        target.setup_baseline().await?;
    }
    target.delete_rows_of(WRITE_TENANT).await?;
    target.copy_to_baseline().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut memory = Memory {
        backend: name.to_owned(),
        engine_idle_kib: engine.rss_kib(),
        baseline_idle_kib: baseline.rss_kib(),
        ..Memory::default()
    };
    let ids = Arc::new(target.ids(BENCH_TENANT, BENCH_REALM).await?);
    let Some(first) = ids.first() else {
        bail!("{name}: tenant {BENCH_TENANT} realm {BENCH_REALM} has no rows (use more --rows)");
    };
    let token = bench.engine.token(BENCH_TENANT, BENCH_REALM)?;
    check_same_answers(&engine, &baseline, &token, first).await?;
    eprintln!(
        "{name}: engine and baseline give the same answers; {} ids in {BENCH_TENANT}/{BENCH_REALM}",
        ids.len()
    );
    let write_token = bench.engine.token(WRITE_TENANT, BENCH_REALM)?;
    bench
        .measure(
            name,
            (&engine, &baseline),
            &token,
            &write_token,
            &ids,
            &args.ops,
            results,
        )
        .await?;
    memory.engine_after_kib = engine.rss_kib();
    memory.baseline_after_kib = baseline.rss_kib();
    engine.stop().await?;
    baseline.stop().await?;
    Ok((memory, ids.len()))
}

/// The growth curve on one backend: tenant `g001` (realm `r1`) filled to each size in turn, the
/// reads measured at each.
async fn growth(
    bench: &Bench,
    target: &Target,
    results: &mut Vec<Comparison>,
) -> anyhow::Result<()> {
    const TENANT: &str = "g001";
    let name = target.name();
    target.recreate().await?;
    bench.engine.activate_invoice(&target.url()).await?;
    let (engine, baseline) = bench.start_servers(target).await?;
    prepare::create_tenants(&bench.engine, engine.addr, &[TENANT.to_owned()]).await?;
    target.setup_baseline().await?;
    let token = bench.engine.token(TENANT, BENCH_REALM)?;
    let reads: Vec<Op> = bench
        .args
        .ops
        .iter()
        .copied()
        .filter(|op| matches!(op, Op::Get | Op::List | Op::ListCount))
        .collect();
    let mut filled = 0;
    for &size in &bench.args.growth_sizes {
        if size > filled {
            let chunks = prepare::one_scope(TENANT, BENCH_REALM, filled, size);
            let rate = prepare::fill(&bench.engine, engine.addr, chunks).await?;
            eprintln!(
                "{name}: {TENANT} filled to {size} rows through the batch route ({rate:.0} rows/s)"
            );
            filled = size;
        }
        target.copy_to_baseline().await?;
        let ids = Arc::new(target.ids(TENANT, BENCH_REALM).await?);
        let first = ids.first().cloned().unwrap_or_default();
        check_same_answers(&engine, &baseline, &token, &first).await?;
        let label = format!("{name} {}", report::rows_label(size));
        bench
            .measure(
                &label,
                (&engine, &baseline),
                &token,
                &token,
                &ids,
                &reads,
                results,
            )
            .await?;
    }
    engine.stop().await?;
    baseline.stop().await?;
    Ok(())
}

/// The realtime benchmark on one backend (see [`realtime`]).
async fn realtime_bench(bench: &Bench, target: &Target) -> anyhow::Result<realtime::RealtimeRun> {
    let name = target.name();
    target.recreate().await?;
    let url = target.url();
    bench.engine.run(&url, &["migrate"], None).await?;
    bench
        .engine
        .run(&url, &["entity", "create", "Doc"], None)
        .await?;
    bench
        .engine
        .run(
            &url,
            &["version", "create", "Doc", "v1"],
            Some(&realtime::doc_schema()),
        )
        .await?;
    bench
        .engine
        .run(&url, &["version", "activate", "Doc", "v1"], None)
        .await?;
    let engine = bench.start_engine(target).await?;
    let tenants = realtime::tenants();
    prepare::create_tenants(&bench.engine, engine.addr, &tenants).await?;
    let tokens = tenants
        .iter()
        .map(|t| bench.engine.token(t, BENCH_REALM))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run = realtime::measure(
        &format!("engine ({name})"),
        &engine,
        &tokens,
        matches!(target, Target::Postgres { .. }),
    )
    .await;
    engine.stop().await?;
    run
}

/// The realtime limit: the hand-written broadcast server, under the same load.
async fn realtime_limit(bench: &Bench) -> anyhow::Result<realtime::RealtimeRun> {
    let logs = bench.work.join("logs");
    std::fs::create_dir_all(&logs)?;
    let addr: SocketAddr = format!("127.0.0.1:{}", procs::free_port()?).parse()?;
    let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
    cmd.arg("broadcast")
        .arg("--listen")
        .arg(addr.to_string())
        .env("METAENGINE_JWT_SECRET", &bench.engine.secret)
        .env("METAENGINE_LOG", "warn");
    let server = Server::start("broadcast limit", cmd, addr, &logs.join("broadcast.log")).await?;
    let tokens = realtime::tenants()
        .iter()
        .map(|t| bench.engine.token(t, BENCH_REALM))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run = realtime::measure("broadcast limit", &server, &tokens, false).await;
    server.stop().await?;
    run
}

/// The relations benchmark on one backend (see [`relations`]).
async fn relations_bench(
    bench: &Bench,
    target: &Target,
    results: &mut Vec<Comparison>,
) -> anyhow::Result<()> {
    const TENANT: &str = "x001";
    let name = target.name();
    target.recreate().await?;
    let url = target.url();
    bench.engine.run(&url, &["migrate"], None).await?;
    for (entity, schema) in [
        ("Customer", relations::customer_schema()),
        ("Invoice", relations::invoice_schema()),
    ] {
        bench
            .engine
            .run(&url, &["entity", "create", entity], None)
            .await?;
        bench
            .engine
            .run(&url, &["version", "create", entity, "v1"], Some(&schema))
            .await?;
        bench
            .engine
            .run(&url, &["version", "activate", entity, "v1"], None)
            .await?;
    }
    let (engine, baseline) = bench.start_servers(target).await?;
    prepare::create_tenants(&bench.engine, engine.addr, &[TENANT.to_owned()]).await?;
    let customers = prepare::one_scope(TENANT, BENCH_REALM, 0, relations::CUSTOMERS);
    prepare::fill_with(
        &bench.engine,
        engine.addr,
        customers,
        "Customer",
        relations::gen_customer,
    )
    .await?;
    let invoices = relations::CUSTOMERS * relations::INVOICES_PER_CUSTOMER;
    let chunks = prepare::one_scope(TENANT, BENCH_REALM, 0, invoices);
    let rate = prepare::fill_with(
        &bench.engine,
        engine.addr,
        chunks,
        "Invoice",
        relations::gen_invoice,
    )
    .await?;
    eprintln!(
        "{name}: {} customers and {invoices} invoices written through the batch route ({rate:.0} invoices/s)",
        relations::CUSTOMERS
    );
    target
        .execute(match target {
            Target::Postgres { .. } => relations::PG_SETUP,
            Target::Sqlite { .. } => relations::LITE_SETUP,
        })
        .await?;
    let token = bench.engine.token(TENANT, BENCH_REALM)?;
    let paths = [
        relations::INVOICES_PATH.to_owned(),
        relations::CUSTOMERS_PATH.to_owned(),
    ];
    check_same(&engine, &baseline, &token, &paths).await?;
    eprintln!("{name}: engine and baseline give the same answers");
    bench
        .measure(
            &format!("{name} relations"),
            (&engine, &baseline),
            &token,
            &token,
            &Arc::new(Vec::new()),
            &[Op::ListExpand, Op::Reverse],
            results,
        )
        .await?;
    engine.stop().await?;
    baseline.stop().await?;
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let work = absolute(&args.work_dir)?;
    std::fs::create_dir_all(&work)?;
    let now = chrono::Utc::now();
    let engine = Engine {
        bin: absolute(&args.engine_bin)?,
        data_dir: work.join("engine-data"),
        secret: format!(
            "metaengine-bench-{}-{}",
            std::process::id(),
            now.timestamp_nanos_opt().unwrap_or_default()
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
    let nonce = report::base36(u64::try_from(now.timestamp()).unwrap_or_default());
    let bench = Bench {
        args,
        engine,
        work,
        nonce,
    };
    if bench.args.ui {
        let mut runs = Vec::new();
        for choice in backends {
            let target = match *choice {
                "postgres" => Target::Postgres {
                    url: "postgres://postgres@127.0.0.1:5432/metaengine_bench_ui".to_owned(),
                },
                _ => Target::Sqlite {
                    path: bench.work.join("sqlite").join("ui.db"),
                },
            };
            let dir = bench.work.join("ui").join(choice);
            std::fs::create_dir_all(&dir)?;
            runs.push(ui::run(&target, &dir).await?);
        }
        println!(
            "
admin UI: {}",
            machine()
        );
        ui::print(&runs);
        return save_json(&bench, "ui.json", &runs);
    }
    if bench.args.snapshot {
        let mut runs = Vec::new();
        for choice in backends {
            let (source, destination) = match *choice {
                "postgres" => (
                    Target::Postgres {
                        url: "postgres://postgres@127.0.0.1:5432/metaengine_bench_snapshot_a"
                            .to_owned(),
                    },
                    Target::Postgres {
                        url: "postgres://postgres@127.0.0.1:5432/metaengine_bench_snapshot_b"
                            .to_owned(),
                    },
                ),
                _ => (
                    Target::Sqlite {
                        path: bench.work.join("sqlite").join("snapshot-a.db"),
                    },
                    Target::Sqlite {
                        path: bench.work.join("sqlite").join("snapshot-b.db"),
                    },
                ),
            };
            let dir = bench.work.join("snapshot").join(choice);
            runs.push(snapshot::run(&source, &destination, &dir).await?);
        }
        println!("\nsnapshot: {}", machine());
        snapshot::print(&runs);
        return save_json(&bench, "snapshot.json", &runs);
    }
    if bench.args.governance {
        let mut runs = Vec::new();
        for choice in backends {
            let target = match *choice {
                "postgres" => Target::Postgres {
                    url: bench.args.governance_pg_url.clone(),
                },
                _ => Target::Sqlite {
                    path: bench.work.join("sqlite").join("governance.db"),
                },
            };
            runs.push(
                governance::run(
                    &target,
                    bench.args.audit_rows,
                    bench.args.duration,
                    bench.args.rounds,
                )
                .await?,
            );
        }
        println!("\ngovernance: {}", machine());
        governance::print(&runs);
        return save_json(&bench, "governance.json", &runs);
    }
    if bench.args.realtime {
        let mut runs = Vec::new();
        for choice in backends {
            let target = match *choice {
                "postgres" => Target::Postgres {
                    url: bench.args.realtime_pg_url.clone(),
                },
                _ => Target::Sqlite {
                    path: bench.work.join("sqlite").join("realtime.db"),
                },
            };
            runs.push(realtime_bench(&bench, &target).await?);
        }
        runs.push(realtime_limit(&bench).await?);
        println!(
            "\nrealtime: {} subscribers over {} tenants, {} creates/s for {} s, {}",
            realtime::TENANTS * realtime::SUBSCRIBERS_PER_TENANT,
            realtime::TENANTS,
            realtime::WRITES_PER_SECOND,
            realtime::PACED_SECONDS,
            machine()
        );
        realtime::print(&runs);
        return save_json(&bench, "realtime.json", &runs);
    }
    let mut results = Vec::new();
    let mut memory = Vec::new();
    let mut scope_rows = 0;
    for choice in backends {
        let growth_mode = bench.args.growth;
        let target = match (*choice, growth_mode) {
            ("postgres", false) => Target::Postgres {
                url: bench.args.pg_url.clone(),
            },
            ("postgres", true) => Target::Postgres {
                url: bench.args.growth_pg_url.clone(),
            },
            (_, false) => Target::Sqlite {
                path: bench.work.join("sqlite").join("metaengine.db"),
            },
            (_, true) => Target::Sqlite {
                path: bench.work.join("sqlite").join("growth.db"),
            },
        };
        let target = match (*choice, bench.args.relations) {
            (_, false) => target,
            ("postgres", true) => Target::Postgres {
                url: bench.args.relations_pg_url.clone(),
            },
            (_, true) => Target::Sqlite {
                path: bench.work.join("sqlite").join("relations.db"),
            },
        };
        let started = Instant::now();
        if bench.args.relations {
            relations_bench(&bench, &target, &mut results).await?;
        } else if growth_mode {
            growth(&bench, &target, &mut results).await?;
        } else {
            let (m, rows) = compare(&bench, &target, &mut results).await?;
            memory.push(m);
            scope_rows = rows;
        }
        eprintln!("{choice}: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    let args = &bench.args;
    let report = Report {
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        machine: machine(),
        settings: Settings {
            rows: if args.growth {
                args.growth_sizes.iter().copied().max().unwrap_or_default()
            } else {
                args.rows
            },
            connections: args.connections,
            duration_s: args.duration,
            warmup_s: args.warmup,
            rounds: args.rounds.max(1),
            pool_size: args.pool_size,
            tenant: if args.growth { "g001" } else { BENCH_TENANT }.to_owned(),
            realm: BENCH_REALM.to_owned(),
            scope_rows,
        },
        results,
        memory,
    };
    println!(
        "\nmetaengine vs baseline{}: {} rows, {} connections, {} s x {} rounds (medians), pool {}, {}",
        if args.relations {
            " (relations)"
        } else if args.growth {
            " (growth curve)"
        } else {
            ""
        },
        report.settings.rows,
        report.settings.connections,
        report.settings.duration_s,
        report.settings.rounds,
        report.settings.pool_size,
        report.machine
    );
    println!("{}", report::table(&report.results));
    println!(
        "CPU per request (medians):\n{}",
        report::cpu_table(&report.results)
    );
    print!("{}", report::write_lines(&report.results));
    if args.growth {
        print!("{}", report::growth_lines(&report.results));
    }
    print!("{}", report::memory_lines(&report.memory));
    let out = absolute(&args.out)?;
    let out = if args.relations {
        out.with_file_name("relations.json")
    } else if args.growth {
        out.with_file_name("growth.json")
    } else {
        out
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("JSON: {}", out.display());
    Ok(())
}
