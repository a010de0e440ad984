//! The result: per backend and operation, each side's runs and their medians, the ratios
//! engine/baseline, printed as a table and written as JSON (the same numbers).

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::load::RunResult;

/// One measured run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// Successful requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Successful requests in the window.
    pub ok: u64,
    /// Failed requests in the window.
    pub errors: u64,
    /// The first error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// CPU time per successful request, µs, of the server process (on SQLite the database too).
    pub server_cpu_us: f64,
    /// CPU time per successful request, µs, of the PostgreSQL processes (0 on SQLite).
    pub database_cpu_us: f64,
    /// CPU time per successful request, µs, of the load generator (this process).
    pub load_cpu_us: f64,
}

/// CPU seconds spent during a run by the server, PostgreSQL and the load generator.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSpent {
    /// The server process.
    pub server: f64,
    /// Every `postgres` process.
    pub database: f64,
    /// The harness (the load generator).
    pub load: f64,
}

impl Run {
    /// The run `r`, which spent `cpu`.
    pub fn new(r: &RunResult, cpu: CpuSpent) -> Run {
        let per_request = |seconds: f64| {
            if r.ok > 0 {
                seconds * 1e6 / r.ok as f64
            } else {
                0.0
            }
        };
        Run {
            rps: r.rps(),
            p50_ms: r.latency_ms(0.50),
            p90_ms: r.latency_ms(0.90),
            p99_ms: r.latency_ms(0.99),
            max_ms: r.histogram.max() as f64 / 1000.0,
            ok: r.ok,
            errors: r.errors,
            first_error: r.first_error.clone(),
            server_cpu_us: per_request(cpu.server),
            database_cpu_us: per_request(cpu.database),
            load_cpu_us: per_request(cpu.load),
        }
    }
}

/// The median of `values` (the mean of the two middle ones for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match (v.get(mid.wrapping_sub(1)), v.get(mid)) {
        (Some(a), Some(b)) if v.len().is_multiple_of(2) => (a + b) / 2.0,
        (_, Some(b)) => *b,
        _ => 0.0,
    }
}

/// One side (engine or baseline) of one operation: its runs and their medians.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// Median over the runs of req/s.
    pub rps: f64,
    /// Median over the runs of p50, ms.
    pub p50_ms: f64,
    /// Median over the runs of p99, ms.
    pub p99_ms: f64,
    /// Failed requests over all runs.
    pub errors: u64,
    /// Median over the runs of the server's CPU per request, µs.
    pub server_cpu_us: f64,
    /// Median over the runs of PostgreSQL's CPU per request, µs.
    pub database_cpu_us: f64,
    /// Every run, in the order run.
    pub runs: Vec<Run>,
}

impl Side {
    /// The medians of `runs`.
    pub fn new(runs: Vec<Run>) -> Side {
        let of = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        Side {
            rps: of(|r| r.rps),
            p50_ms: of(|r| r.p50_ms),
            p99_ms: of(|r| r.p99_ms),
            errors: runs.iter().map(|r| r.errors).sum(),
            server_cpu_us: of(|r| r.server_cpu_us),
            database_cpu_us: of(|r| r.database_cpu_us),
            runs,
        }
    }
}

/// One operation on one backend, both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// `postgres` or `sqlite`.
    pub backend: String,
    /// `get` or `list`.
    pub operation: String,
    /// The engine.
    pub engine: Side,
    /// The baseline.
    pub baseline: Side,
    /// Engine req/s over baseline req/s (medians).
    pub throughput_ratio: f64,
    /// Engine p99 over baseline p99 (medians).
    pub p99_ratio: f64,
    /// `ok`, or `errors` when any run of either side had a failed request.
    pub status: String,
    /// Rows written per request (a batch's size; 1 otherwise).
    pub rows_per_request: usize,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Comparison {
    /// The comparison of `engine` and `baseline` runs.
    pub fn new(backend: &str, operation: &str, engine: Vec<Run>, baseline: Vec<Run>) -> Self {
        let (engine, baseline) = (Side::new(engine), Side::new(baseline));
        Comparison {
            backend: backend.to_owned(),
            operation: operation.to_owned(),
            throughput_ratio: ratio(engine.rps, baseline.rps),
            p99_ratio: ratio(engine.p99_ms, baseline.p99_ms),
            status: if engine.errors + baseline.errors == 0 {
                "ok".to_owned()
            } else {
                "errors".to_owned()
            },
            engine,
            baseline,
            rows_per_request: 1,
        }
    }

    /// The same, for requests that each carry `n` rows.
    pub fn per_request(mut self, n: usize) -> Self {
        self.rows_per_request = n.max(1);
        self
    }
}

/// `10k`, `1M`, `2500`: a row count as the growth table shows it.
pub fn rows_label(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n.is_multiple_of(1_000_000) => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n.is_multiple_of(1_000) => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// `n` in base 36 (lowercase): a short tag.
pub fn base36(mut n: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(
            digits
                .get(usize::try_from(n % 36).unwrap_or(0))
                .copied()
                .unwrap_or(b'0'),
        );
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Rows per second of the batch operations (`rows_per_request` > 1).
pub fn write_lines(results: &[Comparison]) -> String {
    results
        .iter()
        .filter(|c| c.rows_per_request > 1)
        .map(|c| {
            let n = c.rows_per_request as f64;
            format!(
                "{} {}: engine {:.0} rows/s, baseline {:.0} rows/s\n",
                c.backend,
                c.operation,
                c.engine.rps * n,
                c.baseline.rps * n
            )
        })
        .collect()
}

/// The growth curve: per backend and operation, each size's req/s and p50 against the first
/// size's (results labelled `"<backend> <rows>"`).
pub fn growth_lines(results: &[Comparison]) -> String {
    let mut out = String::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for c in results {
        let backend = c.backend.split(' ').next().unwrap_or_default();
        if seen.contains(&(backend, c.operation.as_str())) {
            continue;
        }
        seen.push((backend, c.operation.as_str()));
        let steps: Vec<&Comparison> = results
            .iter()
            .filter(|o| o.operation == c.operation && o.backend.split(' ').next() == Some(backend))
            .collect();
        let Some(first) = steps.first() else {
            continue;
        };
        for (side, pick) in [
            (
                "engine",
                (|c: &Comparison| c.engine.clone()) as fn(&Comparison) -> Side,
            ),
            ("baseline", |c: &Comparison| c.baseline.clone()),
        ] {
            let base = pick(first);
            let parts: Vec<String> = steps
                .iter()
                .map(|s| {
                    let v = pick(s);
                    let size = s.backend.split(' ').nth(1).unwrap_or_default();
                    format!(
                        "{size} {:.0} req/s ({:.2}x), p50 {:.2} ms ({:.2}x)",
                        v.rps,
                        ratio(v.rps, base.rps),
                        v.p50_ms,
                        ratio(v.p50_ms, base.p50_ms)
                    )
                })
                .collect();
            out.push_str(&format!(
                "growth {backend} {} {side}: {}\n",
                c.operation,
                parts.join(" -> ")
            ));
        }
    }
    out
}

/// Resident memory of the servers, KiB (`VmRSS` of `/proc/<pid>/status`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Memory {
    /// `postgres` or `sqlite`.
    pub backend: String,
    /// The engine, idle after start.
    pub engine_idle_kib: Option<u64>,
    /// The engine, after the load.
    pub engine_after_kib: Option<u64>,
    /// The baseline, idle after start.
    pub baseline_idle_kib: Option<u64>,
    /// The baseline, after the load.
    pub baseline_after_kib: Option<u64>,
}

/// The settings of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Rows in the Invoice table.
    pub rows: u64,
    /// Concurrent connections.
    pub connections: usize,
    /// Measured seconds per run.
    pub duration_s: f64,
    /// Warm-up seconds before each run.
    pub warmup_s: f64,
    /// Runs per side and operation.
    pub rounds: usize,
    /// Database pool size of both servers.
    pub pool_size: u32,
    /// Tenant and realm read.
    pub tenant: String,
    /// Realm read.
    pub realm: String,
    /// Rows of that tenant and realm.
    pub scope_rows: usize,
}

/// The whole report, as written to `target/bench/http.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// When it ran (UTC, RFC 3339).
    pub finished_at: String,
    /// Hostname, CPUs, kernel.
    pub machine: String,
    /// Settings.
    pub settings: Settings,
    /// Results, per backend and operation.
    pub results: Vec<Comparison>,
    /// Memory.
    pub memory: Vec<Memory>,
}

fn num(v: f64, decimals: usize) -> Cell {
    Cell::new(format!("{v:.decimals$}")).set_alignment(CellAlignment::Right)
}

/// The results as a text table.
pub fn table(results: &[Comparison]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "backend",
        "operation",
        "engine req/s",
        "engine p50 ms",
        "engine p99 ms",
        "baseline req/s",
        "baseline p50 ms",
        "baseline p99 ms",
        "req/s ratio",
        "p99 ratio",
        "status",
    ]);
    for c in results {
        let status = if c.status == "ok" {
            "ok".to_owned()
        } else {
            format!(
                "ERRORS: engine {}, baseline {}",
                c.engine.errors, c.baseline.errors
            )
        };
        t.add_row(vec![
            Cell::new(&c.backend),
            Cell::new(&c.operation),
            num(c.engine.rps, 0),
            num(c.engine.p50_ms, 2),
            num(c.engine.p99_ms, 2),
            num(c.baseline.rps, 0),
            num(c.baseline.p50_ms, 2),
            num(c.baseline.p99_ms, 2),
            num(c.throughput_ratio, 3),
            num(c.p99_ratio, 3),
            Cell::new(status),
        ]);
    }
    t.to_string()
}

/// The CPU each side spent per request (medians, µs): the server process (on SQLite the
/// database runs inside it) and PostgreSQL's processes.
pub fn cpu_table(results: &[Comparison]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "backend",
        "operation",
        "engine server µs/req",
        "engine PostgreSQL µs/req",
        "baseline server µs/req",
        "baseline PostgreSQL µs/req",
    ]);
    for c in results {
        t.add_row(vec![
            Cell::new(&c.backend),
            Cell::new(&c.operation),
            num(c.engine.server_cpu_us, 0),
            num(c.engine.database_cpu_us, 0),
            num(c.baseline.server_cpu_us, 0),
            num(c.baseline.database_cpu_us, 0),
        ]);
    }
    t.to_string()
}

fn kib(v: Option<u64>) -> String {
    v.map_or_else(
        || "?".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

/// The memory lines.
pub fn memory_lines(memory: &[Memory]) -> String {
    memory
        .iter()
        .map(|m| {
            format!(
                "RSS {}: engine {} idle, {} after load; baseline {} idle, {} after load\n",
                m.backend,
                kib(m.engine_idle_kib),
                kib(m.engine_after_kib),
                kib(m.baseline_idle_kib),
                kib(m.baseline_after_kib)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {

    use super::*;

    fn run(rps: f64, p50: f64, p99: f64, errors: u64) -> Run {
        Run {
            rps,
            p50_ms: p50,
            p90_ms: p99,
            p99_ms: p99,
            max_ms: p99,
            ok: 1,
            errors,
            first_error: None,
            server_cpu_us: 0.0,
            database_cpu_us: 0.0,
            load_cpu_us: 0.0,
        }
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn medians_over_rounds_and_ratios() {
        let c = Comparison::new(
            "postgres",
            "get",
            vec![
                run(900.0, 1.0, 4.0, 0),
                run(1000.0, 2.0, 3.0, 0),
                run(950.0, 3.0, 5.0, 0),
            ],
            vec![
                run(1000.0, 1.0, 2.0, 0),
                run(1100.0, 1.0, 2.0, 0),
                run(1050.0, 1.0, 2.0, 0),
            ],
        );
        assert_eq!(c.engine.rps, 950.0);
        assert_eq!(c.engine.p50_ms, 2.0);
        assert_eq!(c.engine.p99_ms, 4.0);
        assert_eq!(c.baseline.rps, 1050.0);
        assert!((c.throughput_ratio - 950.0 / 1050.0).abs() < 1e-12);
        assert_eq!(c.p99_ratio, 2.0);
        assert_eq!(c.status, "ok");
    }

    #[test]
    fn a_run_with_errors_is_reported_as_such() {
        let c = Comparison::new(
            "sqlite",
            "list",
            vec![run(10.0, 1.0, 1.0, 0)],
            vec![run(10.0, 1.0, 1.0, 7)],
        );
        assert_eq!(c.status, "errors");
        let t = table(std::slice::from_ref(&c));
        assert!(t.contains("ERRORS: engine 0, baseline 7"), "{t}");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["status"], "errors");
        assert_eq!(json["baseline"]["errors"], 7);
    }

    #[test]
    fn the_table_and_the_json_carry_the_same_numbers() {
        let c = Comparison::new(
            "postgres",
            "list",
            vec![run(1234.4, 1.234, 5.678, 0)],
            vec![run(2468.8, 0.5, 2.0, 0)],
        );
        let t = table(std::slice::from_ref(&c));
        for cell in [
            "postgres", "list", "1234", "1.23", "5.68", "2469", "0.500", "2.839",
        ] {
            assert!(t.contains(cell), "{cell} missing from\n{t}");
        }
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["engine"]["rps"], 1234.4);
        assert_eq!(json["throughput_ratio"], 0.5);
        assert_eq!(json["engine"]["runs"][0]["p99_ms"], 5.678);
    }

    #[test]
    fn growth_lines_compare_each_size_with_the_first() {
        let at = |label: &str, e: f64, b: f64| {
            Comparison::new(
                label,
                "get",
                vec![run(e, 1000.0 / e, 1.0, 0)],
                vec![run(b, 1.0, 1.0, 0)],
            )
        };
        let results = [
            at("postgres 10k", 1000.0, 2000.0),
            at("postgres 1M", 500.0, 2000.0),
        ];
        let lines = growth_lines(&results);
        assert!(
            lines.contains("growth postgres get engine: 10k 1000 req/s (1.00x), p50 1.00 ms (1.00x) -> 1M 500 req/s (0.50x), p50 2.00 ms (2.00x)"),
            "{lines}"
        );
        assert!(
            lines.contains("growth postgres get baseline: 10k 2000 req/s (1.00x)"),
            "{lines}"
        );
        assert_eq!(rows_label(10_000), "10k");
        assert_eq!(rows_label(1_000_000), "1M");
        assert_eq!(rows_label(2_500), "2500");
        assert_eq!(base36(0), "0");
        assert_eq!(base36(36 * 36 + 35), "10z");
        let batch = Comparison::new(
            "sqlite",
            "batch of 100",
            vec![run(10.0, 1.0, 1.0, 0)],
            vec![run(20.0, 1.0, 1.0, 0)],
        )
        .per_request(100);
        assert_eq!(
            write_lines(&[batch]),
            "sqlite batch of 100: engine 1000 rows/s, baseline 2000 rows/s\n"
        );
    }

    #[test]
    fn memory_in_mib() {
        let m = Memory {
            backend: "postgres".to_owned(),
            engine_idle_kib: Some(20480),
            engine_after_kib: Some(30720),
            baseline_idle_kib: None,
            baseline_after_kib: Some(1024),
        };
        assert_eq!(
            memory_lines(&[m]),
            "RSS postgres: engine 20.0 MiB idle, 30.0 MiB after load; baseline ? idle, 1.0 MiB after load\n"
        );
    }
}
