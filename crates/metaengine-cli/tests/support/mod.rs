//! The `metaengine` binary run as a user would, against one database: shared by the CLI's test
//! files (each file adds the helpers only it needs, as an extension trait).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The binary with a database URL and a data directory of its own.
pub struct Cli {
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Cli {
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_metaengine"))
            .args(args)
            .env("METAENGINE_DATABASE_URL", &self.url)
            .env("METAENGINE_DATA_DIR", self.dir.path())
            .env("METAENGINE_USER", "tester")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The JSON a command prints.
    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args, None)).unwrap()
    }
}
