//! What some tests need beyond Rust and PostgreSQL's server programs, and the one rule for when
//! it is missing: the test does not run, and the run says so once per test file and missing
//! tool, with the command that installs it; with `CI` set (as `.ci/run` and CI runners set it)
//! the test fails instead, naming the tool.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A program some tests start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    /// Node.js 20+ and npm: the Better Auth interop suite, the subscription clients, the
    /// SvelteKit example (the tests run `npm ci` themselves where modules are missing).
    Node,
    /// Debian's Chromium (or `CHROMIUM`): the browser tests.
    Chromium,
    /// `redis-server`: limits shared through Redis.
    Redis,
    /// HAProxy: the rolling restart.
    HaProxy,
    /// openssl: certificates and keys for the TLS and JWT tests.
    OpenSsl,
    /// Python 3 with aiosmtpd: the SMTP server the notification tests send email to.
    Smtp,
}

impl Tool {
    /// How the run names it.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Node => "Node.js",
            Tool::Chromium => "Chromium",
            Tool::Redis => "redis-server",
            Tool::HaProxy => "haproxy",
            Tool::OpenSsl => "openssl",
            Tool::Smtp => "python3-aiosmtpd",
        }
    }

    /// The command that installs it (Debian, Ubuntu).
    pub fn install(self) -> &'static str {
        match self {
            Tool::Node => {
                "apt-get install nodejs npm; the tests run `npm ci` in tests/interop and examples/sveltekit"
            }
            Tool::Chromium => "apt-get install chromium, or set CHROMIUM to a Chromium binary",
            Tool::Redis => "apt-get install redis-server",
            Tool::HaProxy => "apt-get install haproxy",
            Tool::OpenSsl => "apt-get install openssl",
            Tool::Smtp => "apt-get install python3-aiosmtpd",
        }
    }

    /// Its program, or why there is none usable.
    pub fn find(self) -> Result<PathBuf, String> {
        static FOUND: Mutex<Option<HashMap<Tool, Result<PathBuf, String>>>> = Mutex::new(None);
        let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
        found
            .get_or_insert_with(HashMap::new)
            .entry(self)
            .or_insert_with(|| self.look())
            .clone()
    }

    /// Its program; panics naming the tool when it is missing (for the helpers that start it:
    /// the tests asked [`requires`] first).
    pub fn path(self) -> PathBuf {
        self.find()
            .unwrap_or_else(|why| panic!("{why}: {}", self.install()))
    }

    fn look(self) -> Result<PathBuf, String> {
        match self {
            Tool::Node => {
                let node = on_path("node").ok_or("node is not on PATH")?;
                on_path("npm").ok_or("npm is not on PATH")?;
                let version = std::process::Command::new(&node)
                    .arg("--version")
                    .output()
                    .map_err(|e| format!("{} does not run: {e}", node.display()))?;
                let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
                let major: u32 = version
                    .trim_start_matches('v')
                    .split('.')
                    .next()
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(0);
                if major < 20 {
                    return Err(format!("node {version} is older than 20"));
                }
                Ok(node)
            }
            Tool::Chromium => {
                let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
                let path = PathBuf::from(path);
                if path.exists() {
                    Ok(path)
                } else {
                    Err(format!("{} is missing", path.display()))
                }
            }
            Tool::Redis => in_dirs("redis-server", &["/usr/bin", "/usr/local/bin"]),
            Tool::HaProxy => in_dirs("haproxy", &["/usr/sbin", "/usr/local/sbin"]),
            Tool::OpenSsl => on_path("openssl").ok_or_else(|| "openssl is not on PATH".into()),
            Tool::Smtp => {
                // Debian's python3 (the package's), before whatever else is first on PATH.
                let candidates = [Some(PathBuf::from("/usr/bin/python3")), on_path("python3")];
                candidates
                    .into_iter()
                    .flatten()
                    .find(|python| {
                        std::process::Command::new(python)
                            .args(["-c", "import aiosmtpd"])
                            .output()
                            .is_ok_and(|o| o.status.success())
                    })
                    .ok_or_else(|| "no python3 can import aiosmtpd".to_owned())
            }
        }
    }
}

/// `program` in one of `dirs`, else on `PATH`.
fn in_dirs(program: &str, dirs: &[&str]) -> Result<PathBuf, String> {
    dirs.iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
        .or_else(|| on_path(program))
        .ok_or_else(|| format!("{program} is not installed"))
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Whether the run is CI's (`CI` set, and not to `false` or `0`): then a missing tool fails.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether every one of `tools` is here. A test calls it first and returns when it is false:
///
/// ```ignore
/// if !requires(&[Tool::Redis]) {
///     return;
/// }
/// ```
///
/// When a tool is missing it writes, once per calling file and missing tools, which tests are
/// not run, why and the command that installs what is missing, straight to the process's
/// stderr (libtest captures `eprintln!` of passing tests, not that). With `CI` set it panics
/// instead, naming the tool and its install command.
#[track_caller]
pub fn requires(tools: &[Tool]) -> bool {
    let missing: Vec<(Tool, String)> = tools
        .iter()
        .filter_map(|&tool| tool.find().err().map(|why| (tool, why)))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let file = std::panic::Location::caller().file();
    let needs = tools
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(" and ");
    let why = missing
        .iter()
        .map(|(tool, why)| format!("{why} (install: {})", tool.install()))
        .collect::<Vec<_>>()
        .join("; ");
    if in_ci() {
        panic!(
            "CI is set, so a missing tool fails the run: tests in {file} need {needs}: {why}; .ci/run installs every tool"
        );
    }
    static REPORTED: Mutex<BTreeSet<(String, Vec<Tool>)>> = Mutex::new(BTreeSet::new());
    let key = (file.to_owned(), missing.iter().map(|(t, _)| *t).collect());
    if REPORTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key)
    {
        let _ = writeln!(
            std::io::stderr(),
            "not run: tests in {file} needing {needs}: {why}"
        );
    }
    false
}
