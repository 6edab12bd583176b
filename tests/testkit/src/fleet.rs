//! A fleet of namespaced hosts around one etcd: the harness of zt-agent's tests and benchmark.
//!
//! ```text
//!   hub namespace (ztf-<pid>-<tag>-etcd)          host namespaces (ztf-<pid>-<tag>-<host>)
//!   etcd on 10.99.0.1:2379 ── br0 ──┬── veth ── eth0 10.99.0.11, fd99::11   zt-agent run …
//!        10.99.0.1/24, fd99::1/64   ├── veth ── eth0 10.99.0.12, fd99::12   zt-agent run …
//!                                   └── …
//! ```
//!
//! * [`Fleet::new`] creates the hub namespace (a bridge and Debian's etcd 3.4 on a temporary
//!   data directory) and waits until etcd is healthy; [`Fleet::new_secure`] does the same with
//!   TLS client certificates (a CA made with `openssl`) and etcd authentication enabled.
//! * [`Fleet::add_host`] adds a host: a named namespace (`ip netns add`) linked to the bridge.
//!   [`Host::start_agent`] runs `zt-agent run` inside it with the [`HostOptions`], its stderr
//!   in a file ([`Host::agent_log`]).
//! * [`Host::run`] runs a closure on a thread inside the host's namespace, so
//!   [`crate::connect_as`] probes as real uids there and [`crate::Listeners`] serve there
//!   ([`Host::listen`], [`Host::connect_as`]). [`Host::run_cmd`] runs a program there (`nft`).
//! * [`Fleet::etcdctl`] and its conveniences ([`Fleet::put`], [`Fleet::get`], …) run `etcdctl`
//!   inside the hub namespace; [`Fleet::status_json`] runs `zt-agent status --json`.
//!
//! Namespaces are named `ztf-<pid>-<tag>-…`, so the tests of one process (and of parallel
//! processes) never collide; each fleet's addresses live in its own namespaces, so every fleet
//! uses the same ones. Dropping a [`Host`] kills its processes and deletes its namespace (which
//! deletes its veth pair); dropping the [`Fleet`] stops etcd, and the hub namespace goes with
//! the last host. Namespaces a crashed test process left behind (their pid is gone) are
//! removed when the next fleet is created.
//!
//! Set `ZT_FLEET_KEEP=1` to keep the work directory (etcd's data, the agents' logs and state
//! directories) after the test; its path is printed. It is kept as well when a test panics.

use crate::listen::Listeners;
use crate::probe::{Identity, Outcome, Proto, connect_as};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The hub's IPv4 address on the bridge, where etcd listens.
pub const HUB_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
/// The hub's IPv6 address on the bridge.
pub const HUB_V6: Ipv6Addr = Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 1);
/// etcd's client port.
pub const ETCD_PORT: u16 = 2379;
/// How often [`Fleet::wait_until`] and the other waits poll.
pub const POLL: Duration = Duration::from_millis(50);
/// How long etcd may take to become healthy (a loaded two-core CI machine included).
const ETCD_START: Duration = Duration::from_secs(30);
/// How long a process gets to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(10);
/// Most hosts one fleet can have (addresses 10.99.0.11 … 10.99.0.250).
pub const MAX_HOSTS: u32 = 240;

/// Serializes `ip netns add`/`del` within the process: the first `ip netns add` makes
/// `/run/netns` a shared mount, and concurrent first calls race.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Named network namespaces
// ---------------------------------------------------------------------------------------------

/// A named network namespace (`/run/netns/<name>`); on drop its processes are killed and it is
/// deleted.
struct Ns {
    name: String,
}

impl Ns {
    fn create(name: String) -> Ns {
        // The name holds this process's pid and a per-process counter: one that exists was
        // left by an earlier process with the same pid.
        if Path::new("/run/netns").join(&name).exists() {
            remove_namespace(&name);
        }
        {
            let _guard = lock(&NETNS_LOCK);
            checked(
                output(Command::new("ip").args(["netns", "add", &name]), "ip"),
                "ip",
                &["netns", "add", &name],
            );
        }
        let ns = Ns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// An open descriptor of the namespace.
    fn open(&self) -> OwnedFd {
        let path = self.path();
        OwnedFd::from(
            File::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display())),
        )
    }

    /// A command that runs inside the namespace (it `setns`es between fork and exec).
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let fd = self.open();
        let mut command = Command::new(program);
        // SAFETY: the hook runs between fork and exec and only calls setns(2), which is
        // async-signal-safe; the descriptor is owned by the closure, which the Command keeps
        // until it is dropped (after spawning). It is close-on-exec.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        output(self.command(program).args(args), program)
    }

    fn run_ok(&self, program: &str, args: &[&str]) -> String {
        checked(self.run(program, args), program, args)
    }

    /// `ip -n <ns> …`, which must succeed.
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        checked(output(Command::new("ip").args(&all), "ip"), "ip", &all)
    }

    /// Move the calling thread into the namespace (checked).
    fn enter(&self) {
        let fd = self.open();
        // SAFETY: setns(2) moves only the calling thread.
        if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            panic!(
                "cannot enter network namespace {}: {}",
                self.name,
                io::Error::last_os_error()
            );
        }
        let want = fs::metadata(self.path()).map(|m| (m.dev(), m.ino()));
        let now = fs::metadata("/proc/thread-self/ns/net").map(|m| (m.dev(), m.ino()));
        assert!(
            want.is_ok() && want.ok() == now.ok(),
            "setns into {} did not move the thread there",
            self.name
        );
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        remove_namespace(&self.name);
    }
}

/// Kill every process inside the namespace (never this one), then delete it.
fn remove_namespace(name: &str) {
    let me = std::process::id();
    for _ in 0..3 {
        let pids = Command::new("ip").args(["netns", "pids", name]).output();
        let pids: Vec<libc::pid_t> = pids
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .filter(|&p: &libc::pid_t| p > 1 && p as u32 != me)
                    .collect()
            })
            .unwrap_or_default();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: kill(2) of a process inside a namespace this harness created.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _guard = lock(&NETNS_LOCK);
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

/// Remove the `ztf-<pid>-…` namespaces of processes that no longer exist.
fn remove_stale_namespaces() {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("ztf-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_namespace(&name);
        }
    }
}

/// Run a prepared command, panicking when it cannot start.
fn output(command: &mut Command, program: &str) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Stdout of a command that must have succeeded; panics with its output otherwise.
fn checked(output: Output, program: &str, args: &[&str]) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}):\nstdout: {stdout}\nstderr: {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Send `signal` to a child, wait up to `grace` for it to exit, then SIGKILL it; its status.
fn terminate(child: &mut Child, signal: libc::c_int, grace: Duration) -> ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    // SAFETY: signals our own child, which has not been reaped (try_wait said so).
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                return child
                    .wait()
                    .unwrap_or_else(|e| panic!("cannot reap child {}: {e}", child.id()));
            }
        }
    }
}

/// Poll `check` every [`POLL`] until it returns `Some`, or `None` after `timeout`.
pub fn poll_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// The last `n` lines of a text.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// TLS and authentication
// ---------------------------------------------------------------------------------------------

/// What a client presents to a secure etcd: a client certificate and a user with a password.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The etcd user (also the certificate's common name).
    pub user: String,
    /// The user's password.
    pub password: String,
    /// A file holding the password (no newline), for `--password-file`.
    pub password_file: PathBuf,
    /// The client certificate (PEM).
    pub cert: PathBuf,
    /// The client certificate's key (PEM).
    pub key: PathBuf,
}

struct Secure {
    dir: PathBuf,
    ca: PathBuf,
    ca_key: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    root: Credentials,
}

fn openssl(dir: &Path, args: &[&str]) {
    checked(
        output(
            Command::new("openssl").args(args).current_dir(dir),
            "openssl",
        ),
        "openssl",
        args,
    );
}

impl Secure {
    /// A CA, etcd's server certificate (for 10.99.0.1 and 127.0.0.1) and root's client
    /// certificate, in `dir`.
    fn generate(dir: &Path) -> Secure {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend_from_slice(&ec);
        ca.extend_from_slice(&[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=zt fleet test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &ca);
        let secure = Secure {
            dir: dir.to_path_buf(),
            ca: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            root: Credentials {
                user: String::new(),
                password: String::new(),
                password_file: PathBuf::new(),
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
        };
        secure.sign(
            "server",
            "etcd",
            &format!(
                "subjectAltName=IP:{HUB_V4},IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
            ),
        );
        let root = secure.client("root");
        Secure { root, ..secure }
    }

    /// A key and a certificate signed by the CA: `<stem>.key`, `<stem>.crt`.
    fn sign(&self, stem: &str, cn: &str, extensions: &str) {
        static SIGNING: Mutex<()> = Mutex::new(()); // one CA serial file
        let _guard = lock(&SIGNING);
        let ext = format!("{stem}.ext");
        let all = format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n{extensions}"
        );
        fs::write(self.dir.join(&ext), all).unwrap_or_else(|e| panic!("cannot write {ext}: {e}"));
        let (key, csr, crt) = (
            format!("{stem}.key"),
            format!("{stem}.csr"),
            format!("{stem}.crt"),
        );
        let subject = format!("/CN={cn}");
        openssl(
            &self.dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &subject,
            ],
        );
        let ca = self.ca.to_string_lossy().into_owned();
        let ca_key = self.ca_key.to_string_lossy().into_owned();
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &crt,
                "-extfile",
                &ext,
            ],
        );
    }

    /// Client credentials for `user`: a certificate with that common name and a password.
    fn client(&self, user: &str) -> Credentials {
        let stem = format!("client-{user}");
        self.sign(&stem, user, "extendedKeyUsage=clientAuth\n");
        let password = format!("pw-{user}-{}", std::process::id());
        let password_file = self.dir.join(format!("{stem}.password"));
        fs::write(&password_file, &password)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", password_file.display()));
        Credentials {
            user: user.to_owned(),
            password,
            password_file,
            cert: self.dir.join(format!("{stem}.crt")),
            key: self.dir.join(format!("{stem}.key")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet
// ---------------------------------------------------------------------------------------------

/// What the hub and every host share; dropped with the last of them.
struct Shared {
    prefix: String,
    agent_bin: PathBuf,
    secure: Option<Secure>,
    /// Auth is enabled: etcdctl must present root's user and password.
    auth: Mutex<bool>,
    /// Every agent log, for failure messages.
    logs: Mutex<Vec<(String, PathBuf)>>,
    hub: Ns,
    /// Last: removed after the namespaces (etcd's data directory is inside).
    work: Mutex<Option<tempfile::TempDir>>,
}

impl Shared {
    fn endpoint(&self) -> String {
        let scheme = if self.secure.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{HUB_V4}:{ETCD_PORT}")
    }

    fn work_dir(&self) -> PathBuf {
        lock(&self.work)
            .as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default()
    }

    /// The connection options of `zt-agent` for `who` (root when `None`).
    fn agent_connection(&self, who: Option<&Credentials>) -> Vec<String> {
        let mut args = vec!["--endpoints".to_owned(), self.endpoint()];
        if let Some(secure) = &self.secure {
            let creds = who.unwrap_or(&secure.root);
            for (flag, path) in [
                ("--cacert", &secure.ca),
                ("--cert", &creds.cert),
                ("--key", &creds.key),
            ] {
                args.push(flag.to_owned());
                args.push(path.to_string_lossy().into_owned());
            }
            if *lock(&self.auth) || who.is_some() {
                args.push("--user".to_owned());
                args.push(creds.user.clone());
                args.push("--password-file".to_owned());
                args.push(creds.password_file.to_string_lossy().into_owned());
            }
        }
        args
    }

    /// etcdctl's connection options for `who` (root when `None`).
    fn etcdctl_connection(&self, who: Option<&Credentials>) -> Vec<String> {
        let mut args = vec![format!("--endpoints={}", self.endpoint())];
        if let Some(secure) = &self.secure {
            let creds = who.unwrap_or(&secure.root);
            args.push(format!("--cacert={}", secure.ca.display()));
            args.push(format!("--cert={}", creds.cert.display()));
            args.push(format!("--key={}", creds.key.display()));
            if *lock(&self.auth) || who.is_some() {
                args.push(format!("--user={}:{}", creds.user, creds.password));
            }
        }
        args
    }

    fn etcdctl(&self, who: Option<&Credentials>, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.hub.command("etcdctl");
        command
            .env("ETCDCTL_API", "3")
            .args(self.etcdctl_connection(who))
            .arg("--command-timeout=5s")
            .arg("--dial-timeout=2s")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let Some(input) = stdin else {
            return output(command.stdin(Stdio::null()), "etcdctl");
        };
        let mut child = command
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run etcdctl: {e}"));
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(input.as_bytes())
                .unwrap_or_else(|e| panic!("cannot write etcdctl's stdin: {e}"));
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("cannot wait for etcdctl: {e}"))
    }

    /// The tails of every agent log, for a failure message.
    fn logs_report(&self) -> String {
        let mut out = String::new();
        for (host, path) in lock(&self.logs).iter() {
            let text = fs::read_to_string(path).unwrap_or_default();
            out.push_str(&format!(
                "--- agent log of {host} (last 25 lines) ---\n{}\n",
                tail(&text, 25)
            ));
        }
        out
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let keep = std::thread::panicking() || std::env::var_os("ZT_FLEET_KEEP").is_some();
        if !keep {
            return; // the work directory goes with the last field, after the hub namespace
        }
        if let Some(work) = lock(&self.work).take() {
            let path = work.keep();
            let _ = writeln!(
                io::stderr(),
                "zt fleet {}: work directory kept at {}",
                self.prefix,
                path.display()
            );
        }
    }
}

/// One etcd in a hub namespace, and the hosts around it. See the [module](self) documentation.
pub struct Fleet {
    shared: Arc<Shared>,
    etcd: Mutex<Option<Child>>,
    next_host: AtomicU32,
}

/// Distinguishes fleets created with the same tag by one process.
static FLEETS: AtomicU32 = AtomicU32::new(0);

impl Fleet {
    /// A hub namespace with a bridge and a plain-HTTP etcd, healthy. `tag` names the test (a
    /// few characters of `[a-z0-9]`); `agent_bin` is the `zt-agent` binary
    /// (`env!("CARGO_BIN_EXE_zt-agent")`).
    pub fn new(tag: &str, agent_bin: impl AsRef<Path>) -> Fleet {
        Self::create(tag, agent_bin.as_ref(), false)
    }

    /// Like [`Fleet::new`], with TLS (client certificates required) and etcd authentication
    /// enabled (user `root`). [`Fleet::add_host`] then creates, for each host, a client
    /// certificate, a user and a role with exactly what the agent needs
    /// ([`Fleet::grant_agent`]), and the agent runs with them ([`Host::credentials`]).
    pub fn new_secure(tag: &str, agent_bin: impl AsRef<Path>) -> Fleet {
        Self::create(tag, agent_bin.as_ref(), true)
    }

    fn create(tag: &str, agent_bin: &Path, secure: bool) -> Fleet {
        remove_stale_namespaces();
        let n = FLEETS.fetch_add(1, Ordering::Relaxed);
        let prefix = if n == 0 {
            format!("ztf-{}-{tag}", std::process::id())
        } else {
            format!("ztf-{}-{tag}{n}", std::process::id())
        };
        let shm = Path::new("/dev/shm");
        let mut builder = tempfile::Builder::new();
        let work_prefix = format!("{prefix}-");
        builder.prefix(&work_prefix);
        let work = if shm.is_dir() {
            builder.tempdir_in(shm)
        } else {
            builder.tempdir()
        }
        .unwrap_or_else(|e| panic!("cannot create the fleet's work directory: {e}"));
        let secure = secure.then(|| Secure::generate(&work.path().join("tls")));
        let hub = Ns::create(format!("{prefix}-etcd"));
        hub.ip(&["link", "add", "br0", "type", "bridge"]);
        hub.ip(&["addr", "add", &format!("{HUB_V4}/24"), "dev", "br0"]);
        hub.ip(&[
            "addr",
            "add",
            &format!("{HUB_V6}/64"),
            "dev",
            "br0",
            "nodad",
        ]);
        hub.ip(&["link", "set", "br0", "up"]);
        let fleet = Fleet {
            shared: Arc::new(Shared {
                prefix,
                agent_bin: agent_bin.to_path_buf(),
                secure,
                auth: Mutex::new(false),
                logs: Mutex::new(Vec::new()),
                hub,
                work: Mutex::new(Some(work)),
            }),
            etcd: Mutex::new(None),
            next_host: AtomicU32::new(1),
        };
        fleet.start_etcd();
        if fleet.shared.secure.is_some() {
            fleet.enable_auth();
        }
        fleet
    }

    /// The etcd endpoint (`http://10.99.0.1:2379`, or `https://…` for a secure fleet).
    pub fn endpoint(&self) -> String {
        self.shared.endpoint()
    }

    /// The `zt-agent` binary the fleet runs.
    pub fn agent_bin(&self) -> &Path {
        &self.shared.agent_bin
    }

    /// The fleet's work directory (etcd's data, logs, state directories, TLS files).
    pub fn work_dir(&self) -> PathBuf {
        self.shared.work_dir()
    }

    /// The name of the hub namespace (`ip netns exec <name> …`).
    pub fn hub_namespace(&self) -> &str {
        &self.shared.hub.name
    }

    /// Root's credentials on a secure fleet.
    pub fn root_credentials(&self) -> Option<&Credentials> {
        self.shared.secure.as_ref().map(|s| &s.root)
    }

    /// The CA certificate of a secure fleet.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.shared.secure.as_ref().map(|s| s.ca.as_path())
    }

    // ----- etcd -----

    /// Start etcd (on the fleet's data directory) and wait until it is healthy.
    pub fn start_etcd(&self) {
        let mut slot = lock(&self.etcd);
        assert!(slot.is_none(), "etcd is already running");
        let work = self.shared.work_dir();
        let log_path = work.join("etcd.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log_path.display()));
        let client = self.endpoint();
        let mut command = self.shared.hub.command("etcd");
        command
            .arg(format!("--data-dir={}", work.join("etcd-data").display()))
            .arg("--name=default")
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg("--listen-peer-urls=http://127.0.0.1:2380")
            .arg("--initial-advertise-peer-urls=http://127.0.0.1:2380")
            .arg("--initial-cluster=default=http://127.0.0.1:2380")
            .arg("--log-level=warn")
            .arg("--logger=zap")
            .arg("--log-outputs=stderr");
        if let Some(secure) = &self.shared.secure {
            command
                .arg(format!("--cert-file={}", secure.server_cert.display()))
                .arg(format!("--key-file={}", secure.server_key.display()))
                .arg(format!("--trusted-ca-file={}", secure.ca.display()))
                .arg("--client-cert-auth");
        }
        let err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot duplicate the etcd log: {e}"));
        let mut child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
        let deadline = Instant::now() + ETCD_START;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "etcd exited ({status}) while starting:\n{}",
                    tail(&fs::read_to_string(&log_path).unwrap_or_default(), 30)
                );
            }
            let health = self.shared.etcdctl(None, &["endpoint", "health"], None);
            if health.status.success() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = terminate(&mut child, libc::SIGKILL, Duration::ZERO);
                panic!(
                    "etcd was not healthy within {ETCD_START:?}: {}\n{}",
                    String::from_utf8_lossy(&health.stderr),
                    tail(&fs::read_to_string(&log_path).unwrap_or_default(), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        *slot = Some(child);
    }

    /// Stop etcd (SIGTERM, then wait; SIGKILL after 10 s).
    pub fn stop_etcd(&self) {
        if let Some(mut child) = lock(&self.etcd).take() {
            terminate(&mut child, libc::SIGTERM, TERM_GRACE);
        }
    }

    /// Whether etcd is running (started and not stopped by [`Fleet::stop_etcd`]).
    pub fn etcd_running(&self) -> bool {
        lock(&self.etcd)
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Run `etcdctl <args>` inside the hub namespace as root (ETCDCTL_API=3; TLS and root's
    /// user on a secure fleet).
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        self.shared.etcdctl(None, args, None)
    }

    /// Run `etcdctl <args>` with `who`'s certificate, user and password.
    pub fn etcdctl_as(&self, who: &Credentials, args: &[&str]) -> Output {
        self.shared.etcdctl(Some(who), args, None)
    }

    /// Like [`Fleet::etcdctl`], panicking with its output unless it succeeds; its stdout.
    pub fn etcdctl_ok(&self, args: &[&str]) -> String {
        checked(self.etcdctl(args), "etcdctl", args)
    }

    /// Put `value` at `key` (the value goes through stdin, so it may start with `-`); the
    /// store's revision after the put.
    pub fn put(&self, key: &str, value: &str) -> i64 {
        let out = self
            .shared
            .etcdctl(None, &["put", key, "-w", "json"], Some(value));
        let text = checked(out, "etcdctl", &["put", key]);
        revision_of(&text)
    }

    /// The value at `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<String> {
        let text = self.etcdctl_ok(&["get", key, "--print-value-only"]);
        let value = text.strip_suffix('\n').unwrap_or(&text);
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// The keys under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.etcdctl_ok(&["get", prefix, "--prefix", "--keys-only"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Delete `key`; whether it existed.
    pub fn del(&self, key: &str) -> bool {
        self.etcdctl_ok(&["del", key]).trim() != "0"
    }

    /// The store's current revision.
    pub fn revision(&self) -> i64 {
        revision_of(&self.etcdctl_ok(&["get", "/zt/", "--limit=1", "--keys-only", "-w", "json"]))
    }

    /// Compact the store's history up to its current revision (physically); that revision.
    pub fn compact_to_current(&self) -> i64 {
        let revision = self.revision();
        self.etcdctl_ok(&["compaction", "--physical", &revision.to_string()]);
        revision
    }

    /// Put policy `name` (`/zt/v1/policies/<name>`) straight into etcd, unchecked; the
    /// revision after the put.
    pub fn put_policy(&self, name: &str, yaml: &str) -> i64 {
        self.put(&format!("/zt/v1/policies/{name}"), yaml)
    }

    /// Delete policy `name` straight from etcd; whether it existed.
    pub fn del_policy(&self, name: &str) -> bool {
        self.del(&format!("/zt/v1/policies/{name}"))
    }

    // ----- zt-agent's operator commands -----

    /// Run `zt-agent <args> <connection options>` inside the hub namespace (as root).
    pub fn agent_command(&self, args: &[&str]) -> Output {
        let mut command = self.shared.hub.command(&self.shared.agent_bin);
        command
            .args(args)
            .args(self.shared.agent_connection(None))
            .stdin(Stdio::null());
        output(&mut command, "zt-agent")
    }

    /// Run `zt-agent <args> <connection options of who>` inside the hub namespace, with
    /// `who`'s certificate, user and password.
    pub fn agent_command_as(&self, who: &Credentials, args: &[&str]) -> Output {
        let mut command = self.shared.hub.command(&self.shared.agent_bin);
        command
            .args(args)
            .args(self.shared.agent_connection(Some(who)))
            .stdin(Stdio::null());
        output(&mut command, "zt-agent")
    }

    /// Write `yaml` to a file in the work directory; its path.
    pub fn policy_file(&self, name: &str, yaml: &str) -> PathBuf {
        let dir = self.shared.work_dir().join("push");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let file = dir.join(format!("{name}.yaml"));
        fs::write(&file, yaml).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        file
    }

    /// `zt-agent push <name> <file> --json` with `yaml` written to a file; its output.
    pub fn push(&self, name: &str, yaml: &str) -> Output {
        let file = self.policy_file(name, yaml).to_string_lossy().into_owned();
        self.agent_command(&["push", name, &file, "--json"])
    }

    /// [`Fleet::push`], panicking unless it succeeds.
    pub fn push_ok(&self, name: &str, yaml: &str) {
        let out = self.push(name, yaml);
        assert!(
            out.status.success(),
            "`zt-agent push {name}` failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `zt-agent remove <name> --json`; its output.
    pub fn remove(&self, name: &str) -> Output {
        self.agent_command(&["remove", name, "--json"])
    }

    /// `zt-agent status --json`, parsed; `Err` with the command's output when it fails or
    /// prints something else than JSON.
    pub fn try_status_json(&self) -> Result<Value, String> {
        let out = self.agent_command(&["status", "--json"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "`zt-agent status --json` failed ({}):\nstdout: {stdout}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_str(&stdout)
            .map_err(|e| format!("`zt-agent status --json` printed no JSON ({e}):\n{stdout}"))
    }

    /// `zt-agent status --json`, parsed (panics when it fails).
    pub fn status_json(&self) -> Value {
        self.try_status_json().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Poll `zt-agent status --json` every 50 ms until `predicate` holds; that status. Panics
    /// after `timeout` naming `what`, with the last status (or error) and the agents' logs.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut predicate: impl FnMut(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        let mut last = Err(String::from("(never polled)"));
        let found = poll_for(timeout, || {
            last = self.try_status_json();
            match &last {
                Ok(status) if predicate(status) => Some(status.clone()),
                _ => None,
            }
        });
        match found {
            Some(status) => status,
            None => panic!(
                "{what}: not within {timeout:?} (waited {:?}); last fleet status:\n{}\n{}",
                start.elapsed(),
                match &last {
                    Ok(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
                    Err(e) => e.clone(),
                },
                self.shared.logs_report()
            ),
        }
    }

    /// The status host `name` wrote (`/zt/v1/status/<name>`), parsed; `None` when absent.
    pub fn host_status(&self, name: &str) -> Option<Value> {
        let text = self.get(&format!("/zt/v1/status/{name}"))?;
        Some(
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("/zt/v1/status/{name} is not JSON ({e}): {text}")),
        )
    }

    /// Poll host `name`'s own status key until `predicate` holds; that status. Panics after
    /// `timeout` naming `what`, with the last status and the agents' logs.
    pub fn wait_host_status(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        mut predicate: impl FnMut(&Value) -> bool,
    ) -> Value {
        let mut last = None;
        let found = poll_for(timeout, || {
            last = self.host_status(name);
            last.as_ref().filter(|s| predicate(s)).cloned()
        });
        found.unwrap_or_else(|| {
            panic!(
                "{what}: not within {timeout:?}; last /zt/v1/status/{name}:\n{}\n{}",
                last.map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
                    .unwrap_or_else(|| "(absent)".into()),
                self.shared.logs_report()
            )
        })
    }

    /// Every agent's log tail, for a failure message.
    pub fn logs_report(&self) -> String {
        self.shared.logs_report()
    }

    // ----- authentication -----

    fn enable_auth(&self) {
        let Some(secure) = &self.shared.secure else {
            return;
        };
        let root = &secure.root;
        self.etcdctl_ok(&["user", "add", &format!("root:{}", root.password)]);
        // etcd 3.4 creates the root role with the root user on some versions only.
        let _ = self.etcdctl(&["role", "add", "root"]);
        let _ = self.etcdctl(&["user", "grant-role", "root", "root"]);
        self.etcdctl_ok(&["auth", "enable"]);
        *lock(&self.shared.auth) = true;
    }

    /// On a secure fleet: a client certificate, a user `agent-<host>` and a role of the same
    /// name that may read `/zt/v1/policies/` and read and write `/zt/v1/hosts/<host>` and
    /// `/zt/v1/status/<host>` (docs/FLEET.md's role), and nothing else. `None` on a plain
    /// fleet.
    pub fn grant_agent(&self, host: &str) -> Option<Credentials> {
        let secure = self.shared.secure.as_ref()?;
        let user = format!("agent-{host}");
        let creds = secure.client(&user);
        self.etcdctl_ok(&["role", "add", &user]);
        self.etcdctl_ok(&[
            "role",
            "grant-permission",
            &user,
            "read",
            "/zt/v1/policies/",
            "--prefix=true",
        ]);
        for key in [
            format!("/zt/v1/hosts/{host}"),
            format!("/zt/v1/status/{host}"),
        ] {
            self.etcdctl_ok(&["role", "grant-permission", &user, "readwrite", &key]);
        }
        self.etcdctl_ok(&["user", "add", &format!("{user}:{}", creds.password)]);
        self.etcdctl_ok(&["user", "grant-role", &user, &user]);
        Some(creds)
    }

    // ----- hosts -----

    /// Add host `name` (its namespace linked to the bridge, addresses 10.99.0.(10+i) and
    /// fd99::(10+i) for the i-th host); the agent is not started ([`Host::start_agent`]).
    pub fn add_host(&self, name: &str, options: HostOptions) -> Host {
        let index = self.next_host.fetch_add(1, Ordering::Relaxed);
        assert!(index <= MAX_HOSTS, "a fleet has at most {MAX_HOSTS} hosts");
        let ns = Ns::create(format!("{}-{name}", self.shared.prefix));
        let hub = &self.shared.hub;
        let hub_end = format!("vh{index}");
        hub.ip(&[
            "link", "add", &hub_end, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ]);
        hub.ip(&["link", "set", &hub_end, "master", "br0"]);
        hub.ip(&["link", "set", &hub_end, "up"]);
        let v4 = Ipv4Addr::new(10, 99, 0, (10 + index) as u8);
        let v6: Ipv6Addr = format!("fd99::{}", 10 + index)
            .parse()
            .unwrap_or_else(|e| panic!("host address: {e}"));
        ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
        ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        let dir = self.shared.work_dir().join(format!("host-{name}"));
        let state_dir = dir.join("state");
        fs::create_dir_all(&state_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", state_dir.display()));
        let log = dir.join("agent.log");
        lock(&self.shared.logs).push((name.to_owned(), log.clone()));
        let credentials = self.grant_agent(name);
        Host {
            name: name.to_owned(),
            index,
            v4,
            v6,
            state_dir,
            log,
            credentials,
            options: Mutex::new(options),
            agent: Mutex::new(None),
            ns,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(mut child) = lock(&self.etcd).take() {
            terminate(&mut child, libc::SIGKILL, Duration::ZERO);
        }
    }
}

/// The `header.revision` of an etcdctl `-w json` answer.
fn revision_of(json: &str) -> i64 {
    let v: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("etcdctl printed no JSON ({e}): {json}"));
    v.pointer("/header/revision")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no header.revision in etcdctl's answer: {json}"))
}

// ---------------------------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------------------------

/// How a host's agent runs.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// `--backend`: "nft", "iptables" or "ebpf".
    pub backend: String,
    /// `--label key=value`, each.
    pub labels: BTreeMap<String, String>,
    /// `--verify-interval` (the agent's default when `None`).
    pub verify_interval: Option<Duration>,
    /// `--lease-ttl` in seconds (the agent's default when `None`).
    pub lease_ttl: Option<u32>,
    /// More arguments after the others (e.g. `--heartbeat 500ms`).
    pub extra_args: Vec<String>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            backend: "nft".to_owned(),
            labels: BTreeMap::new(),
            verify_interval: None,
            lease_ttl: None,
            extra_args: Vec::new(),
        }
    }
}

impl HostOptions {
    /// The nft backend, no labels, the agent's defaults.
    pub fn nft() -> Self {
        HostOptions::default()
    }

    /// The iptables backend (variant detected by the agent), no labels.
    pub fn iptables() -> Self {
        HostOptions {
            backend: "iptables".to_owned(),
            ..HostOptions::default()
        }
    }

    /// With label `key=value`.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// With `--verify-interval`.
    pub fn verify_interval(mut self, interval: Duration) -> Self {
        self.verify_interval = Some(interval);
        self
    }

    /// With `--lease-ttl`.
    pub fn lease_ttl(mut self, seconds: u32) -> Self {
        self.lease_ttl = Some(seconds);
        self
    }

    /// With more arguments.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }
}

/// A duration as the agent reads one (`500ms`, `2s`).
fn duration_arg(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// One host of a [`Fleet`]: a namespace and (when started) its agent. Dropping it kills the
/// agent and deletes the namespace.
pub struct Host {
    name: String,
    index: u32,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
    state_dir: PathBuf,
    log: PathBuf,
    credentials: Option<Credentials>,
    options: Mutex<HostOptions>,
    agent: Mutex<Option<Child>>,
    // Dropped after the agent is killed (see Drop), before `shared`.
    ns: Ns,
    shared: Arc<Shared>,
}

impl Host {
    /// The host's name (`--host`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its position in the fleet (1 for the first host).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Its IPv4 address on the bridge.
    pub fn v4(&self) -> Ipv4Addr {
        self.v4
    }

    /// Its IPv6 address on the bridge.
    pub fn v6(&self) -> Ipv6Addr {
        self.v6
    }

    /// The namespace's name (`ip netns exec <name> …`).
    pub fn namespace(&self) -> &str {
        &self.ns.name
    }

    /// The agent's `--state-dir` (kept across restarts).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The agent's credentials on a secure fleet.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The options the agent (re)starts with.
    pub fn options(&self) -> HostOptions {
        lock(&self.options).clone()
    }

    /// Change the options the agent starts with next.
    pub fn set_options(&self, options: HostOptions) {
        *lock(&self.options) = options;
    }

    /// The `zt-agent run …` arguments.
    pub fn agent_args(&self) -> Vec<String> {
        let options = self.options();
        let mut args = vec!["run".to_owned()];
        args.extend(self.shared.agent_connection(self.credentials.as_ref()));
        args.extend(["--host".to_owned(), self.name.clone()]);
        for (k, v) in &options.labels {
            args.extend(["--label".to_owned(), format!("{k}={v}")]);
        }
        args.extend(["--backend".to_owned(), options.backend.clone()]);
        args.extend([
            "--state-dir".to_owned(),
            self.state_dir.to_string_lossy().into_owned(),
        ]);
        if let Some(d) = options.verify_interval {
            args.extend(["--verify-interval".to_owned(), duration_arg(d)]);
        }
        if let Some(ttl) = options.lease_ttl {
            args.extend(["--lease-ttl".to_owned(), ttl.to_string()]);
        }
        args.extend(options.extra_args.iter().cloned());
        args
    }

    /// Start `zt-agent run …` inside the namespace, stdout and stderr appended to the log.
    /// Panics if the agent is running.
    pub fn start_agent(&self) {
        let mut slot = lock(&self.agent);
        if let Some(child) = slot.as_mut() {
            assert!(
                !matches!(child.try_wait(), Ok(None)),
                "the agent of {} is already running",
                self.name
            );
        }
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let args = self.agent_args();
        let _ = writeln!(log, "### harness: starting zt-agent {}", args.join(" "));
        let err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot duplicate the agent log: {e}"));
        let child = self
            .ns
            .command(&self.shared.agent_bin)
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} in {}: {e}",
                    self.shared.agent_bin.display(),
                    self.ns.name
                )
            });
        *slot = Some(child);
    }

    fn end_agent(&self, signal: libc::c_int, grace: Duration) -> Option<ExitStatus> {
        let mut child = lock(&self.agent).take()?;
        let status = terminate(&mut child, signal, grace);
        self.note(&format!("agent ended ({status}) after signal {signal}"));
        Some(status)
    }

    /// SIGTERM the agent and wait for it (SIGKILL after 10 s); its exit status.
    pub fn stop_agent(&self) -> Option<ExitStatus> {
        self.end_agent(libc::SIGTERM, TERM_GRACE)
    }

    /// SIGKILL the agent; its exit status.
    pub fn kill_agent(&self) -> Option<ExitStatus> {
        self.end_agent(libc::SIGKILL, Duration::ZERO)
    }

    /// Stop the agent (SIGTERM) and start it again with the current options.
    pub fn restart_agent(&self) {
        self.stop_agent();
        self.start_agent();
    }

    /// Whether the agent is running; `Err` with its exit status when it has exited by itself.
    pub fn agent_running(&self) -> Result<bool, ExitStatus> {
        match lock(&self.agent).as_mut() {
            None => Ok(false),
            Some(child) => match child.try_wait() {
                Ok(None) => Ok(true),
                Ok(Some(status)) => Err(status),
                Err(_) => Ok(false),
            },
        }
    }

    /// The agent's pid, when it runs.
    pub fn agent_pid(&self) -> Option<u32> {
        lock(&self.agent).as_ref().map(Child::id)
    }

    /// Everything the agent wrote (every run, in order; the harness marks each start).
    pub fn agent_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's path.
    pub fn agent_log_path(&self) -> &Path {
        &self.log
    }

    /// A position in the log, for [`Host::agent_log_since`].
    pub fn log_mark(&self) -> usize {
        fs::metadata(&self.log).map_or(0, |m| m.len() as usize)
    }

    /// What the agent wrote after `mark`.
    pub fn agent_log_since(&self, mark: usize) -> String {
        let log = fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(log.get(mark..).unwrap_or_default()).into_owned()
    }

    /// Wait until the log after `mark` contains `needle`; that part of the log. Panics after
    /// `timeout` with the log.
    pub fn wait_for_log(&self, mark: usize, needle: &str, timeout: Duration) -> String {
        poll_for(timeout, || {
            let text = self.agent_log_since(mark);
            text.contains(needle).then_some(text)
        })
        .unwrap_or_else(|| {
            panic!(
                "the agent of {} did not log {needle:?} within {timeout:?}; its log since then:\n{}",
                self.name,
                tail(&self.agent_log_since(mark), 40)
            )
        })
    }

    /// Write a line into the agent's log (marks what the test did, for the reader).
    pub fn note(&self, what: &str) {
        if let Ok(mut log) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
        {
            let _ = writeln!(log, "### harness: {what}");
        }
    }

    /// Run `f` on a new thread inside the host's namespace; its result (a panic in `f` is
    /// resumed here). Threads `f` spawns, sockets it opens and children it forks live in the
    /// namespace too, so [`crate::connect_as`] and [`crate::Listeners::start`] work there.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name(format!("ztf-{}", self.name))
                .spawn_scoped(scope, || {
                    self.ns.enter();
                    f()
                })
                .unwrap_or_else(|e| panic!("cannot spawn a thread: {e}"));
            match worker.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Echo listeners inside the host's namespace, served until the guard is dropped.
    pub fn listen(&self, endpoints: &[(Proto, SocketAddr)]) -> Listeners {
        let endpoints = endpoints.to_vec();
        self.run(move || Listeners::start(&endpoints))
    }

    /// A connection attempt as `id` from inside the host's namespace.
    pub fn connect_as(
        &self,
        id: Identity,
        proto: Proto,
        dst: SocketAddr,
        timeout: Duration,
    ) -> Outcome {
        self.run(|| connect_as(id, proto, dst, timeout))
    }

    /// Run `program args…` inside the host's namespace.
    pub fn run_cmd(&self, program: &str, args: &[&str]) -> Output {
        self.ns.run(program, args)
    }

    /// Like [`Host::run_cmd`], panicking with its output unless it succeeds; its stdout.
    pub fn run_cmd_ok(&self, program: &str, args: &[&str]) -> String {
        self.ns.run_ok(program, args)
    }

    /// `ip -n <host> …` (must succeed), e.g. `host.ip(&["link", "set", "eth0", "down"])`.
    pub fn ip(&self, args: &[&str]) -> String {
        self.ns.ip(args)
    }

    /// Whether the host's `table inet zt` exists (nft backend).
    pub fn has_nft_table(&self) -> bool {
        self.run_cmd("nft", &["list", "table", "inet", "zt"])
            .status
            .success()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut child) = lock(&self.agent).take() {
            terminate(&mut child, libc::SIGKILL, Duration::ZERO);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Prerequisite, require};

    fn prerequisites() -> bool {
        require(&[
            Prerequisite::Root,
            Prerequisite::Binary("ip"),
            Prerequisite::Binary("etcd"),
            Prerequisite::Binary("etcdctl"),
            Prerequisite::Binary("openssl"),
        ])
    }

    /// The harness alone (no agent): etcd answers, hosts reach it over the bridge, probes and
    /// listeners run inside a host, etcd restarts on its data, compaction works, namespaces go.
    #[test]
    fn a_plain_fleet_reaches_etcd_from_its_hosts() {
        if !prerequisites() {
            return;
        }
        let fleet = Fleet::new("self", "/bin/true");
        let r1 = fleet.put("/zt/v1/policies/a", "- starts with a dash\n");
        assert_eq!(
            fleet.get("/zt/v1/policies/a").as_deref(),
            Some("- starts with a dash\n")
        );
        let h1 = fleet.add_host("h1", HostOptions::nft());
        let h2 = fleet.add_host("h2", HostOptions::iptables());
        assert_eq!(
            (h1.v4(), h2.v4()),
            (Ipv4Addr::new(10, 99, 0, 11), Ipv4Addr::new(10, 99, 0, 12))
        );
        let etcd = SocketAddr::from((HUB_V4, ETCD_PORT));
        let second = Duration::from_secs(1);
        assert_eq!(
            h1.connect_as(Identity::ROOT, Proto::Tcp, etcd, second),
            Outcome::Connected
        );
        let _l = h2.listen(&[(Proto::Tcp, "127.0.0.1:7001".parse().unwrap())]);
        let there = SocketAddr::from((h2.v4(), 7001));
        // 127.0.0.1 inside h2 only: from h1 the port on h2's bridge address is closed.
        assert_eq!(
            h1.connect_as(Identity::ROOT, Proto::Tcp, there, second),
            Outcome::Refused
        );
        let local = "127.0.0.1:7001".parse().unwrap();
        assert_eq!(
            h2.connect_as(Identity::new(20001, 20001), Proto::Tcp, local, second),
            Outcome::Connected
        );
        assert_eq!(
            h1.connect_as(Identity::ROOT, Proto::Tcp, local, second),
            Outcome::Refused
        );
        fleet.stop_etcd();
        assert!(!fleet.etcd_running());
        assert_eq!(
            h1.connect_as(Identity::ROOT, Proto::Tcp, etcd, second),
            Outcome::Refused
        );
        fleet.start_etcd();
        assert!(
            fleet.get("/zt/v1/policies/a").is_some(),
            "etcd restarted on its data"
        );
        fleet.put("/zt/v1/policies/b", "x");
        let compacted = fleet.compact_to_current();
        assert!(compacted > r1);
        let old = fleet.etcdctl(&["get", "/zt/v1/policies/a", &format!("--rev={r1}")]);
        assert!(!old.status.success(), "revision {r1} is compacted");
        assert!(fleet.del_policy("a"));
        assert_eq!(
            fleet.keys("/zt/v1/policies/"),
            vec!["/zt/v1/policies/b".to_owned()]
        );
        let names = [h1.namespace().to_owned(), fleet.hub_namespace().to_owned()];
        drop(h1);
        drop(h2);
        drop(fleet);
        for name in names {
            assert!(
                !Path::new("/run/netns").join(&name).exists(),
                "{name} is gone"
            );
        }
    }

    /// TLS with client certificates and auth: root administers; an agent's user reads
    /// policies, writes its own keys and nothing else.
    #[test]
    fn a_secure_fleet_grants_agents_their_own_keys_only() {
        if !prerequisites() {
            return;
        }
        let fleet = Fleet::new_secure("sec", "/bin/true");
        assert!(fleet.endpoint().starts_with("https://"));
        fleet.put_policy("p", "version: \"1.0\"\nrules: []\n");
        let h1 = fleet.add_host("h1", HostOptions::nft());
        let creds = h1.credentials().cloned().unwrap();
        let ok = |args: &[&str]| {
            let out = fleet.etcdctl_as(&creds, args);
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let denied = |args: &[&str]| {
            let out = fleet.etcdctl_as(&creds, args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && err.contains("permission denied"),
                "{args:?}: {err}"
            );
        };
        ok(&["get", "/zt/v1/policies/", "--prefix"]);
        ok(&["put", "/zt/v1/status/h1", "{}"]);
        ok(&["put", "/zt/v1/hosts/h1", "{}"]);
        denied(&["put", "/zt/v1/policies/x", "y"]);
        denied(&["put", "/zt/v1/status/h2", "{}"]);
        denied(&["get", "/zt/v1/status/", "--prefix"]);
        // Without a password, the certificate's common name is the user.
        let anonymous = fleet.shared.etcdctl_connection(None);
        assert!(anonymous.iter().any(|a| a.starts_with("--user=root:")));
    }
}
