//! `topicguard demo`: the whole flow in one command ([`topicguard::runtime::demo`]): development
//! credentials, the broker (`topicguard serve` as a child process) with the policy, a
//! service, two gateways of two accounts and a mobile app, and a scripted scenario printed
//! step by step with each decision and its rule. Exits 0 when every step happened, 1 with
//! the step that did not. This module must never hold the scenario itself.

use super::gateway::{block_on, stdout_log};
use super::output::Exit;
use std::path::PathBuf;
use topicguard::runtime::demo::{self, DemoSetup};

/// Arguments of `topicguard demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The policy the broker enforces.
    #[arg(long, default_value = "policies/xfinity.policy")]
    pub policy: PathBuf,
    /// Where the development credentials and the broker log go (default: a new directory
    /// under the system temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs `topicguard demo`.
pub fn run(args: &DemoArgs) -> Exit {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find the topicguard executable to start the broker: {e}");
            return Exit::Failure;
        }
    };
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("topicguard-demo-{}", std::process::id()))
    });
    let setup = DemoSetup {
        exe,
        policy: args.policy.clone(),
        dir,
    };
    block_on(async move {
        match demo::run(&setup, stdout_log()).await {
            Ok(()) => Exit::Ok,
            Err(step) => {
                eprintln!("error: {step}");
                Exit::Failure
            }
        }
    })
}
