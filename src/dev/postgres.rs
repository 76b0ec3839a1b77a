//! A private PostgreSQL cluster for `bff dev` and the tests, made from the machine's
//! PostgreSQL binaries: initialised once under a project-local folder, kept across runs,
//! listening on 127.0.0.1 only, with trust authentication and no Unix socket.
//!
//! PostgreSQL refuses to run as root, so when bff runs as root (containers, CI) the cluster's
//! folder is given to an unprivileged user (`postgres`, else `nobody`) and the server runs
//! as that user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::error::{StartupError, StartupResult};

/// The superuser the cluster is created with.
pub const SUPERUSER: &str = "postgres";

/// How the cluster trades durability for speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync on: a developer's data survives a crash.
    Safe,
    /// fsync off: for throwaway test databases.
    Fast,
}

/// A running private cluster.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    started_here: bool,
}

fn err(message: impl Into<String>) -> StartupError {
    StartupError(message.into())
}

/// The folder holding `initdb` and `pg_ctl`: from PATH, else the newest
/// `/usr/lib/postgresql/*/bin`.
pub fn find_binaries() -> StartupResult<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = crate::config::dev::search_path()
        .into_iter()
        .find(|d| has_both(d))
    {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        err(
            "PostgreSQL's server programs (initdb, pg_ctl) were not found on PATH or under \
             /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install postgresql`; \
             macOS: `brew install postgresql@16`), or set DATABASE_URL to a database you run.",
        )
    })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// uid and gid of the first of `names` that exists in /etc/passwd.
fn unprivileged_user() -> StartupResult<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for wanted in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() > 3
                && fields[0] == wanted
                && let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse())
            {
                return Ok((uid, gid));
            }
        }
    }
    Err(err(
        "running as root, and neither a `postgres` nor a `nobody` user exists to run \
         PostgreSQL as (it refuses to run as root); create one or run as a normal user",
    ))
}

/// Whether every ancestor of `path` lets any user through.
fn world_traversable(path: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

fn free_port() -> StartupResult<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| err(format!("cannot find a free port: {e}")))?;
    Ok(listener
        .local_addr()
        .map_err(|e| err(e.to_string()))?
        .port())
}

impl Cluster {
    /// Starts the cluster under `root` (initialising it on first use), or joins it if it is
    /// already running. When run as root and `root`'s ancestors are closed to other users, the
    /// cluster lives in the system temp folder instead.
    pub fn ensure(root: &Path, durability: Durability) -> StartupResult<Cluster> {
        Self::ensure_with(root, durability, |_| Ok(()))
    }

    /// Like [`Cluster::ensure`], with `configure` run on the data folder right after `initdb`
    /// (before the first start): extra settings, certificates, `pg_hba.conf` rules.
    pub fn ensure_with(
        root: &Path,
        durability: Durability,
        configure: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> StartupResult<Cluster> {
        let bin = find_binaries()?;
        let run_as = if is_root() {
            Some(unprivileged_user()?)
        } else {
            None
        };
        let mut root = std::path::absolute(root).map_err(|e| err(e.to_string()))?;
        std::fs::create_dir_all(&root)
            .map_err(|e| err(format!("cannot create {}: {e}", root.display())))?;
        if run_as.is_some() && !world_traversable(&root) {
            let name = root.to_string_lossy().replace('/', "_");
            root = std::env::temp_dir().join(format!("bff-postgres{name}"));
        }
        std::fs::create_dir_all(&root)
            .map_err(|e| err(format!("cannot create {}: {e}", root.display())))?;
        if let Some((uid, gid)) = run_as {
            chown_tree(&root, uid, gid)
                .map_err(|e| err(format!("cannot hand {} to uid {uid}: {e}", root.display())))?;
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| err(e.to_string()))?;
        }
        let mut cluster = Cluster {
            root,
            bin,
            port: 0,
            run_as,
            started_here: false,
        };
        if !cluster.data_dir().join("PG_VERSION").is_file() {
            cluster.init(durability)?;
            configure(&cluster.data_dir())
                .map_err(|e| err(format!("cannot configure the cluster: {e}")))?;
            if let Some((uid, gid)) = cluster.run_as {
                chown_tree(&cluster.root, uid, gid).map_err(|e| err(e.to_string()))?;
            }
        }
        cluster.port = std::fs::read_to_string(cluster.root.join("port"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| {
                err(format!(
                    "{} has no port file; remove the folder to start over",
                    cluster.root.display()
                ))
            })?;
        if !cluster.is_running() {
            cluster.start()?;
            cluster.started_here = true;
        }
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(&self.root);
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    fn run(&self, mut command: Command, what: &str) -> StartupResult<Output> {
        let output = command
            .output()
            .map_err(|e| err(format!("cannot run {what}: {e}")))?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(err(format!(
                "{what} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    fn init(&self, durability: Durability) -> StartupResult<()> {
        let mut initdb = self.command("initdb");
        initdb.arg("-D").arg(self.data_dir()).args([
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]);
        self.run(initdb, "initdb")?;
        let port = free_port()?;
        let mut settings = format!(
            "\n# bff: a private cluster\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = ''\nmax_connections = 200\n"
        );
        if durability == Durability::Fast {
            settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let conf = self.data_dir().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| err(e.to_string()))?;
        text.push_str(&settings);
        std::fs::write(&conf, text).map_err(|e| err(e.to_string()))?;
        let port_file = self.root.join("port");
        std::fs::write(&port_file, port.to_string()).map_err(|e| err(e.to_string()))?;
        if let Some((uid, gid)) = self.run_as {
            chown_tree(&port_file, uid, gid).map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }

    fn is_running(&self) -> bool {
        let mut status = self.command("pg_ctl");
        status.arg("-D").arg(self.data_dir()).arg("status");
        status.output().is_ok_and(|o| o.status.success())
    }

    /// Starts the server (waiting until it accepts connections).
    pub fn start(&self) -> StartupResult<()> {
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.root.join("postgres.log"))
            .args(["-w", "-t", "60", "start"]);
        self.run(start, "pg_ctl start").map(|_| ()).map_err(|e| {
            err(format!(
                "{e}\nSee {} for PostgreSQL's own words.",
                self.root.join("postgres.log").display()
            ))
        })
    }

    /// `pg_ctl -m fast stop` (or `restart`): what an operator's restart does to clients.
    pub fn pg_ctl_fast(&self, action: &str) -> StartupResult<()> {
        let mut command = self.command("pg_ctl");
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "60"]);
        if action == "restart" {
            command.arg("-l").arg(self.root.join("postgres.log"));
        }
        command.arg(action);
        self.run(command, &format!("pg_ctl {action}")).map(|_| ())
    }

    /// Stops the server if this process started it.
    pub fn stop_if_started_here(&self) -> StartupResult<()> {
        if !self.started_here {
            return Ok(());
        }
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "stop"]);
        self.run(stop, "pg_ctl stop").map(|_| ())
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The cluster's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
}
