//! Child OS processes for the multi-process use cases: start this program again in another role,
//! learn where the child serves, and never leave it behind.
//!
//! The `cluster` and `broker_free` example applications run some of their nodes as
//! child processes of the example or test binary itself. This module holds what they share:
//!
//! - **Starting**: [`SelfExe`] makes the command that runs this very program again, in a role
//!   given on its command line (an example) or in an environment variable, with only one test
//!   selected (an integration test: [`SelfExe::test_entry`], read back by [`role_from_env`] and
//!   run by [`block_on`]). [`ChildProcess::spawn`] starts it with the cookie in an environment
//!   variable (the command line is visible to every user of the machine; the environment is
//!   not), its stdin and stdout as pipes, its stderr inherited.
//! - **The ready handshake**: once it serves, the child prints one line that starts with a marker
//!   of its use case and names its address ([`announce_ready`]); the parent waits for that line,
//!   with a timeout, skipping any other output ([`ChildProcess::ready`]). A child binds port 0 or
//!   a [`free_loopback_addr`], so the line is how the parent learns the port.
//! - **Lifetime**: the child serves until [`wait_for_release`] returns, that is until its stdin
//!   reaches its end or Ctrl-C arrives.
//!
//! # Failure
//!
//! - A parent that drops its [`ChildProcess`] SIGKILLs and reaps the child: no child outlives its
//!   guard, whatever path (an error, a panic) the parent takes.
//! - A parent that dies without dropping the guard (SIGKILLed itself) closes the child's stdin
//!   pipe with its other files; the child's [`wait_for_release`] returns and it shuts down on its
//!   own.
//! - [`ChildProcess::stop`] is the clean way: it closes the pipe, gives the child a grace period
//!   to shut down, and kills it only then.
//!
//! # Examples
//!
//! A program that is its own child:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use ergo_testkit::process::{self, ChildProcess, SelfExe};
//!
//! const READY: &str = "demo-ready";
//! if std::env::args().nth(1).as_deref() == Some("child") {
//!     // The child: say where it serves, then serve until the parent lets go.
//!     process::announce_ready(&format!("{READY} addr=127.0.0.1:7000"));
//!     process::wait_for_release().await?;
//!     return Ok(());
//! }
//! // The parent: start this program again as the child and wait for its ready line.
//! let cookie = process::random_cookie();
//! let command = SelfExe::current()?.command(["child"]);
//! let mut child = ChildProcess::spawn(command, "child", "DEMO_COOKIE", &cookie)?;
//! let line = child
//!     .ready(Duration::from_secs(5), |line| line.contains(READY).then(|| line.to_string()))
//!     .await?;
//! assert!(line.ends_with("addr=127.0.0.1:7000"));
//! assert!(child.stop(Duration::from_secs(1)).await, "it shut down by itself");
//! # Ok(()) }
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

/// How often an idle connection between the nodes of a multi-process scenario sends a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_millis(250);

/// How long a silent peer is given before its connection is taken down (a SIGKILLed peer's
/// sockets close at once; this is for a peer that hangs).
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// `127.0.0.1:0`: a node listening there gets a free port from the OS (and says which in its
/// ready line), with no window in which another program could take a port chosen beforehand.
pub const ANY_LOOPBACK_PORT: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));

// ---------------------------------------------------------------------------------------------
// Addresses and cookies
// ---------------------------------------------------------------------------------------------

/// A free loopback address: binds `127.0.0.1:0`, reads the port, lets it go. (Another program
/// could take the port before a child binds it; on a test machine it does not.)
///
/// # Errors
///
/// When no socket can be bound.
pub fn free_loopback_addr() -> io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Parses a role's listen address, which must be a loopback address (the scenarios never serve
/// beyond this machine).
///
/// # Errors
///
/// A message naming the argument: it does not parse, or it is not a loopback address.
pub fn parse_loopback_addr(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s.parse().map_err(|e| format!("address `{s}`: {e}"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!("`{s}` is not a loopback address"))
    }
}

/// A fresh cookie: 32 random bytes from the OS (`/dev/urandom`), in hex. Where that file is
/// missing, 256 bits of SipHash output keyed by the standard library's per-process random keys.
pub fn random_cookie() -> String {
    let mut bytes = [0u8; 32];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        use std::hash::{BuildHasher, Hasher};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(now.as_nanos());
            h.write_u32(std::process::id());
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Starting this program again
// ---------------------------------------------------------------------------------------------

/// This program's own executable, to start again as a child in another role: no other binary
/// has to be built.
#[derive(Clone, Debug)]
pub struct SelfExe {
    path: PathBuf,
}

impl SelfExe {
    /// The running program's executable.
    ///
    /// # Errors
    ///
    /// When the OS cannot say where it is ([`std::env::current_exe`]).
    pub fn current() -> io::Result<SelfExe> {
        Ok(SelfExe {
            path: std::env::current_exe()?,
        })
    }

    /// The program with `args`: how an example starts itself in a role named on its command
    /// line.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(&self.path);
        command.args(args);
        command
    }

    /// The program as a test binary that runs only the test `entry` (by exact name, on one
    /// thread, its output not captured, so that its ready line reaches the parent), with the
    /// words of `role` in the environment variable `role_var`, joined by spaces (so a word
    /// must not contain one). `entry` reads them back with [`role_from_env`]; in a normal test
    /// run the variable is not set and `entry` does nothing.
    pub fn test_entry<I, S>(&self, entry: &str, role_var: &str, role: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let role: Vec<S> = role.into_iter().collect();
        let role: Vec<&str> = role.iter().map(AsRef::as_ref).collect();
        let mut command =
            self.command(["--exact", entry, "--nocapture", "--test-threads=1"].map(OsStr::new));
        command.env(role_var, role.join(" "));
        command
    }
}

/// The role a child started by [`SelfExe::test_entry`] is to play: the words of the environment
/// variable `role_var`; `None` when it is not set (a normal test run).
pub fn role_from_env(role_var: &str) -> Option<Vec<String>> {
    let role = std::env::var(role_var).ok()?;
    Some(role.split_whitespace().map(String::from).collect())
}

/// Runs `future` to its end on a new multi-thread runtime with two worker threads: the body of
/// a child's test entry, a plain `#[test]` function.
///
/// # Panics
///
/// When the runtime cannot be built.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

// ---------------------------------------------------------------------------------------------
// The child's side
// ---------------------------------------------------------------------------------------------

/// Prints the ready line `line` on stdout and flushes it: the child's half of the handshake
/// (see [`ChildProcess::ready`]). The line starts with the use case's marker and names where
/// the child serves.
pub fn announce_ready(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Waits until the parent releases this child: its stdin reaches its end (the parent closed the
/// pipe, or died) or Ctrl-C arrives. Stdin is read on a plain thread, not `spawn_blocking`, so
/// that a read blocked on it does not hold the runtime's shutdown up after Ctrl-C.
///
/// # Errors
///
/// At once, when the thread that watches stdin cannot be started.
///
/// # Cancel safety
///
/// Dropping the future stops waiting; the watching thread ends with the process.
pub async fn wait_for_release() -> io::Result<()> {
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = eof_tx.send(());
        })?;
    tokio::select! {
        _ = eof_rx => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The parent's side
// ---------------------------------------------------------------------------------------------

/// Why a child process could not be started, heard from or stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum ChildError {
    /// Starting, killing or reaping the process failed.
    Io {
        /// The child's name.
        name: String,
        /// What went wrong.
        error: io::Error,
    },
    /// The child closed its stdout before its ready line: it ended, as a rule.
    Ended {
        /// The child's name.
        name: String,
        /// Its exit status, if it had ended by then.
        status: Option<ExitStatus>,
    },
    /// The child printed no ready line in time.
    NoReadyLine {
        /// The child's name.
        name: String,
        /// The time it had.
        within: Duration,
    },
}

impl ChildError {
    /// The name of the child the error is about.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ergo_testkit::process::ChildError;
    ///
    /// let e = ChildError::NoReadyLine { name: "back1".into(), within: Duration::from_secs(5) };
    /// assert_eq!(e.child(), "back1");
    /// ```
    pub fn child(&self) -> &str {
        match self {
            ChildError::Io { name, .. }
            | ChildError::Ended { name, .. }
            | ChildError::NoReadyLine { name, .. } => name,
        }
    }
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::Io { name, error } => write!(f, "the process of `{name}`: {error}"),
            ChildError::Ended { name, status } => {
                write!(f, "`{name}` ended before it was ready")?;
                match status {
                    Some(status) => write!(f, " ({status})"),
                    None => f.write_str(" (closed its stdout)"),
                }
            }
            ChildError::NoReadyLine { name, within } => {
                write!(f, "`{name}` printed no ready line within {within:?}")
            }
        }
    }
}

impl std::error::Error for ChildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChildError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A child OS process and the guard that ends it. Dropping the guard kills the process (SIGKILL
/// on unix) and reaps it, so no child outlives its guard; and since the child's stdin is a pipe
/// from this guard, a child whose parent died without dropping it (SIGKILL) stops on its own
/// (see [`wait_for_release`]).
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    reaped: bool,
}

impl ChildProcess {
    /// Starts `command`, named `name` (its node, say) in errors and thread names, handing it
    /// `cookie` through the environment variable `cookie_var`; its stdin and stdout become pipes
    /// to this guard, its stderr is inherited. A thread forwards its stdout line by line, for
    /// [`ChildProcess::ready`].
    ///
    /// # Errors
    ///
    /// [`ChildError::Io`] if the process or its stdout thread cannot start (the process is then
    /// killed).
    pub fn spawn(
        mut command: Command,
        name: &str,
        cookie_var: &str,
        cookie: &str,
    ) -> Result<ChildProcess, ChildError> {
        let failed = |error| ChildError::Io {
            name: name.to_string(),
            error,
        };
        command
            .env(cookie_var, cookie)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().map_err(failed)?;
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take();
        let guard = ChildProcess {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            reaped: false,
        };
        if let Some(stdout) = stdout {
            // Forwards the child's stdout line by line; ends with it.
            std::thread::Builder::new()
                .name(format!("{name}-stdout"))
                .spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                })
                .map_err(failed)?; // the guard, dropped, kills the child
        }
        Ok(guard)
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OS process id.
    pub fn os_pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has ended.
    pub fn has_exited(&mut self) -> bool {
        self.reaped || matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits (at most `within`) for the child's ready line: the first line of its stdout for
    /// which `parse` returns `Some`, whose value is returned. Other lines are skipped (a test
    /// harness prints its own; a ready line's marker may even follow `test name ... ` on the
    /// same line, which `parse` must allow for).
    ///
    /// # Errors
    ///
    /// [`ChildError::Ended`] if the child closes its stdout first, [`ChildError::NoReadyLine`]
    /// if the time runs out.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses no line but the one being parsed.
    pub async fn ready<T>(
        &mut self,
        within: Duration,
        mut parse: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, ChildError> {
        let deadline = Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(ready) = parse(&line) {
                        return Ok(ready);
                    }
                }
                Ok(None) => {
                    return Err(ChildError::Ended {
                        name: self.name.clone(),
                        status: self.child.try_wait().ok().flatten(),
                    })
                }
                Err(_) => {
                    return Err(ChildError::NoReadyLine {
                        name: self.name.clone(),
                        within,
                    })
                }
            }
        }
    }

    /// Kills the process (SIGKILL on unix: no clean-up runs in it) and reaps it. Does nothing
    /// once it is reaped.
    ///
    /// # Errors
    ///
    /// [`ChildError::Io`] if it cannot be killed or reaped.
    pub fn kill(&mut self) -> Result<(), ChildError> {
        if self.reaped {
            return Ok(());
        }
        let killed = self.child.kill();
        self.stdin = None;
        let reaped = self.child.wait();
        self.reaped = true;
        killed
            .and(reaped.map(drop))
            .map_err(|error| ChildError::Io {
                name: self.name.clone(),
                error,
            })
    }

    /// Stops the process cleanly: closes its stdin (the child then shuts down, see
    /// [`wait_for_release`]), waits for it up to `grace`, then kills it. Returns whether it
    /// ended by itself.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the child to the guard's drop, which kills it.
    pub async fn stop(&mut self, grace: Duration) -> bool {
        if self.reaped {
            return true;
        }
        self.stdin = None;
        let child = &mut self.child;
        if poll_until(grace, Duration::from_millis(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        })
        .await
        {
            self.reaped = true;
            return true;
        }
        let _ = self.kill();
        false
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Checks `check` every `every` until it holds, for at most `within`; returns whether it held.
/// It is checked first at once, and last at or after the deadline.
///
/// # Cancel safety
///
/// Cancel safe: it only checks and sleeps.
pub async fn poll_until(
    within: Duration,
    every: Duration,
    mut check: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + within;
    while !check() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
    true
}
