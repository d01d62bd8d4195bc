//! `topicguard demo`: the whole flow in one command ([`topicguard::runtime::demo`]): development
//! credentials, the broker (`topicguard serve` as a child process) with the policy, a
//! service, two gateways of two accounts and a mobile app, and a scripted scenario printed
//! step by step with each decision and its rule.
//!
//! Runs from any directory: without `--policy` it enforces the shipped xfinity policy, built
//! into the binary. Without `--dir` its keys and files go to a new private directory (0700)
//! under the system temporary directory, removed on every exit path: success, a failed
//! step, an error, Ctrl-C or SIGTERM (and a panic, by unwinding). Exits 0 when every step
//! happened, 1 with the step that did not, 2 with a readable error when it cannot start or
//! is interrupted. This module must never hold the scenario itself.

use super::gateway::block_on;
use super::output::{CliError, Exit, Out};
use std::path::{Path, PathBuf};
use topicguard::runtime::demo::{self, DemoSetup};

/// The shipped xfinity policy, enforced when no `--policy` is given.
const BUILT_IN_POLICY: &str = include_str!("../../policies/xfinity.policy");

/// Arguments of `topicguard demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The policy the broker enforces (default: the shipped xfinity policy, built into the
    /// binary, so the demo runs from any directory).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Where the development credentials and the broker log go; the directory is kept.
    /// Default: a new private directory under the system temporary directory, removed
    /// when the demo ends, however it ends.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs `topicguard demo`.
pub fn run(args: &DemoArgs, out: Out) -> Exit {
    let setup_error = |message: String| out.error(&CliError::Runtime(message));
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            return setup_error(format!(
                "cannot find the topicguard executable to start the broker: {e}"
            ));
        }
    };
    // Dropped on every way out of this function, unwinding included: removes a directory
    // the demo created.
    let workdir = match WorkDir::new(args.dir.as_deref()) {
        Ok(workdir) => workdir,
        Err(e) => return setup_error(e),
    };
    let policy = match &args.policy {
        Some(policy) => policy.clone(),
        None => {
            let path = workdir.path.join("xfinity.policy");
            if let Err(e) = std::fs::write(&path, BUILT_IN_POLICY) {
                return setup_error(format!("cannot write {}: {e}", path.display()));
            }
            path
        }
    };
    let setup = DemoSetup {
        exe,
        policy,
        dir: workdir.path.clone(),
    };
    block_on(out, async move {
        tokio::select! {
            outcome = demo::run(&setup, out.log()) => match outcome {
                Ok(()) => Exit::Ok,
                Err(error) if error.is_setup() => out.error(&CliError::Runtime(format!(
                    "the demo cannot start: {error}"
                ))),
                Err(error) => out.fail(&CliError::Runtime(error.to_string()), Exit::Failure),
            },
            signal = interrupted() => out.error(&CliError::Runtime(format!(
                "interrupted by {signal}: the demo stopped its broker and clients"
            ))),
        }
    })
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, naming the signal.
async fn interrupted() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => term.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = terminated => "SIGTERM",
    }
}

/// The demo's directory; one it created itself is removed when this is dropped.
struct WorkDir {
    path: PathBuf,
    remove: bool,
}

impl WorkDir {
    /// The directory the user named (created if needed, kept), or a new private one.
    fn new(named: Option<&Path>) -> Result<WorkDir, String> {
        if let Some(path) = named {
            std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(WorkDir {
                path: path.to_path_buf(),
                remove: false,
            });
        }
        let base = std::env::temp_dir();
        let pid = std::process::id();
        for attempt in 0..100 {
            let path = base.join(format!("topicguard-demo-{pid}-{attempt}"));
            // `create` (not `create_all`) fails on anything already there, a planted
            // symlink included; 0700 keeps the private keys to this user.
            let created = {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new().mode(0o700).create(&path)
            };
            match created {
                Ok(()) => return Ok(WorkDir { path, remove: true }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
        }
        Err(format!(
            "cannot create a fresh directory under {}",
            base.display()
        ))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
