//! The two servers as child processes: started on a free port, waited for until `/ready` answers
//! 200, measured (`VmRSS`), and killed when dropped (so an error never leaves one running).

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::load;

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// `engine` or `baseline`.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    child: tokio::process::Child,
}

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `VmRSS` of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat` (100 on every
/// architecture this harness runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user + system) of `pid` so far, seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|t| t as f64 / TICKS_PER_SECOND)
}

/// `utime + stime` of a `/proc/<pid>/stat` line (fields 14 and 15; the command name in
/// parentheses may hold spaces, so fields are counted after its closing parenthesis).
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time so far of every living `postgres` process on the machine (the server and its
/// backends; both sides' pools keep their connections for the whole run), seconds.
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end() == "postgres")
        })
        .filter_map(cpu_seconds)
        .sum()
}

/// The `VmRSS:   1234 kB` line of a `/proc/<pid>/status` text, in KiB.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
}

impl Server {
    /// Starts `cmd` (its output appended to `log`) and waits until `GET /ready` answers 200.
    pub async fn start(
        name: &'static str,
        mut cmd: tokio::process::Command,
        addr: SocketAddr,
        log: &Path,
    ) -> anyhow::Result<Server> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start the {name}"))?;
        let mut server = Server { name, addr, child };
        server.wait_ready(log).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, log: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the {} exited ({status}) before it was ready; see {}",
                    self.name,
                    log.display()
                );
            }
            if let Ok((200, _)) = load::fetch(self.addr, None, "/ready").await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the {} was not ready within 60 s; see {}",
                    self.name,
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its CPU time so far, seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.child.id().and_then(cpu_seconds)
    }

    /// Its resident memory now, KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.child.id().and_then(rss_kib)
    }

    /// Stops it (SIGTERM, so the engine flushes its audit trail; SIGKILL after 10 s) and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        self.child.kill().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tmetaengine\nVmPeak:\t  99999 kB\nVmRSS:\t   23456 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(23456));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        let stat = "4242 (tokio worker 1) S 1 2 3 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 8 0";
        assert_eq!(parse_cpu_ticks(stat), Some(287));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1"), None);
        assert!(cpu_seconds(std::process::id()).is_some());
    }
}
