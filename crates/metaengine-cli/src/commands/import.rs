//! `metaengine data import ENTITY FILE`: NDJSON or CSV rows through the runtime's importer
//! (validated like `create`, written in batches), with a progress bar on stderr, every rejected
//! row reported by line, and a summary line at the end. Exit status 1 when a row was rejected.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use metaengine_core::Problem;
use metaengine_runtime::data::{BatchReport, ImportOptions, ImportRow, Importer};
use metaengine_runtime::{Actor, DataService};
use serde_json::Value;

use super::input::strip_position;

/// What `data import` was asked to do.
pub struct ImportArgs<'a> {
    pub entity: &'a str,
    pub file: &'a Path,
    pub format: Option<&'a str>,
    pub dry_run: bool,
    pub batch_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

fn format_of(file: &Path, format: Option<&str>) -> Format {
    match format {
        Some("csv") => Format::Csv,
        Some(_) => Format::Ndjson,
        None if file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv")) =>
        {
            Format::Csv
        }
        None => Format::Ndjson,
    }
}

/// Totals so far, shown on the bar and in the summary.
#[derive(Default)]
struct Totals {
    imported: u64,
    rejected: u64,
}

struct Run<'a> {
    importer: Importer,
    bar: &'a ProgressBar,
    totals: Totals,
}

impl Run<'_> {
    async fn push(&mut self, row: ImportRow) -> anyhow::Result<()> {
        let reports = self.importer.push(row).await?;
        self.totals.add(self.bar, reports);
        Ok(())
    }
}

impl Totals {
    /// Counts the reports and prints their rejected rows (above the bar).
    fn add(&mut self, bar: &ProgressBar, reports: Vec<BatchReport>) {
        for report in reports {
            self.imported += report.imported;
            self.rejected += report.rejected.len() as u64;
            if !report.rejected.is_empty() {
                bar.suspend(|| {
                    for row in &report.rejected {
                        eprintln!("{row}");
                    }
                });
            }
        }
        bar.set_message(format!(
            "{} imported, {} rejected",
            self.imported, self.rejected
        ));
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal: by bytes of a file, a spinner
/// for stdin.
fn progress(len: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match len {
        Some(len) => {
            let bar = ProgressBar::new(len);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {elapsed} (eta {eta}) {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {bytes} {elapsed} {msg}") {
                bar.set_style(style);
            }
            bar
        }
    }
}

/// Imports the file; the error (exit status 1) says how many rows were rejected, if any.
pub async fn run(data: &DataService, actor: &Actor, args: ImportArgs<'_>) -> anyhow::Result<()> {
    data.check_importable(args.entity).await?;
    let format = format_of(args.file, args.format);
    let (source, len): (Box<dyn Read>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = File::open(args.file)
            .with_context(|| format!("cannot read `{}`", args.file.display()))?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(file), len)
    };
    let bar = progress(len);
    let reader = BufReader::with_capacity(1 << 16, bar.wrap_read(source));
    let options = ImportOptions {
        batch_size: args.batch_size.max(1),
        dry_run: args.dry_run,
        ..ImportOptions::default()
    };
    let mut run = Run {
        importer: data.importer(actor.clone(), args.entity, options),
        bar: &bar,
        totals: Totals::default(),
    };
    let started = Instant::now();
    let read = match format {
        Format::Ndjson => read_ndjson(reader, &mut run).await,
        Format::Csv => read_csv(data, args.entity, reader, &mut run).await,
    };
    let Run {
        importer,
        mut totals,
        ..
    } = run;
    // Even after a failure, wait for the batches already sent, so the totals are true.
    let failure = match importer.finish().await {
        Ok(reports) => {
            totals.add(&bar, reports);
            read.err()
        }
        Err(e) => Some(read.err().unwrap_or_else(|| e.into())),
    };
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let Totals { imported, rejected } = totals;
    let rate = if seconds > 0.0 {
        imported as f64 / seconds
    } else {
        0.0
    };
    let rows = |n: u64| if n == 1 { "row" } else { "rows" };
    if args.dry_run {
        println!(
            "dry run: would import {imported} {} ({rejected} rejected) in {seconds:.2} s \
             ({rate:.0} rows/s); nothing was written (unique values are checked only on import)",
            rows(imported)
        );
    } else {
        println!(
            "imported {imported} {} ({rejected} rejected) in {seconds:.2} s ({rate:.0} rows/s)",
            rows(imported)
        );
    }
    if let Some(e) = failure {
        return Err(e.context("the import stopped; the batches reported above were written"));
    }
    if rejected > 0 {
        bail!(
            "{rejected} {} rejected (see the lines above)",
            if rejected == 1 {
                "row was"
            } else {
                "rows were"
            }
        );
    }
    Ok(())
}

async fn read_ndjson(mut reader: impl BufRead, run: &mut Run<'_>) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut line = 0u64;
    loop {
        buf.clear();
        if reader
            .read_until(b'\n', &mut buf)
            .context("cannot read the input")?
            == 0
        {
            return Ok(());
        }
        line += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = serde_json::from_slice::<Value>(&buf).map_err(|e| {
            let mut message = format!("not valid JSON: {}", strip_position(&e.to_string()));
            if e.line() == 1 {
                message.push_str(&format!(" at column {}", e.column()));
            }
            vec![Problem::new("", message)]
        });
        run.push(ImportRow { line, record }).await?;
    }
}

async fn read_csv(
    data: &DataService,
    entity: &str,
    reader: impl BufRead,
    run: &mut Run<'_>,
) -> anyhow::Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let header: Vec<String> = csv
        .headers()
        .context("cannot read the CSV header")?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let columns = data.csv_columns(entity, &header).await?;
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        let record = match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => ImportRow {
                line: record.position().map_or(line, csv::Position::line),
                record: columns.record(record.iter()),
            },
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(e).context("cannot read the input");
            }
            Err(e) => ImportRow {
                line: e.position().map_or(line, csv::Position::line),
                record: Err(vec![Problem::new("", format!("not valid CSV: {e}"))]),
            },
        };
        run.push(record).await?;
    }
}
