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
}
