//! `topicguard decide`: one request, one identity, the full explanation.
//!
//! Loads and compiles the policy, binds the identity (see [`super::identity_args`]) and
//! prints the engine's [`topicguard::decide::Explanation`]: its text form, or its JSON form with
//! `--format json`. Exits 0 when allowed and 1 when denied. It never changes the policy.

use super::identity_args::IdentityArgs;
use super::output::{CliError, Exit, Out};
use std::path::PathBuf;
use topicguard::decide::{Engine, Request};
use topicguard::policy::Policy;

/// Arguments of `topicguard decide`.
#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,

    #[command(flatten)]
    pub identity: IdentityArgs,

    #[command(subcommand)]
    pub request: RequestArgs,
}

/// The request to decide.
#[derive(Debug, clap::Subcommand)]
pub enum RequestArgs {
    /// CONNECT with the client id.
    Connect,
    /// PUBLISH to a topic name.
    Publish {
        /// Publish with the retain flag (needs the `retain` action as well as `publish`).
        #[arg(long)]
        retain: bool,
        /// The topic name (no wildcards).
        #[arg(value_name = "TOPIC")]
        topic: String,
    },
    /// SUBSCRIBE to a topic filter (`+` and `#` allowed; `$share/GROUP/` is stripped).
    Subscribe {
        /// The topic filter.
        #[arg(value_name = "FILTER")]
        filter: String,
    },
    /// Delivery of a message published on a topic to this client.
    Receive {
        /// The topic name the message was published on.
        #[arg(value_name = "TOPIC")]
        topic: String,
    },
}

impl RequestArgs {
    pub fn request(&self) -> Request<'_> {
        match self {
            RequestArgs::Connect => Request::Connect,
            RequestArgs::Publish { retain, topic } => Request::Publish {
                topic,
                retain: *retain,
            },
            RequestArgs::Subscribe { filter } => Request::subscribe(filter),
            RequestArgs::Receive { topic } => Request::receive(topic),
        }
    }
}

/// Runs `topicguard decide`.
pub fn run(args: &DecideArgs, out: Out) -> Exit {
    match decide(args, out) {
        Ok(exit) => exit,
        Err(error) => out.error(&error),
    }
}

fn decide(args: &DecideArgs, out: Out) -> Result<Exit, CliError> {
    let policy = Policy::load(&args.policy)?;
    let engine = Engine::new(&policy.checked)?;
    let (identity, client_id) = args.identity.resolve(&policy.checked)?;
    let session = engine.bind(&identity, &client_id);
    let explanation = engine.explain(&session, args.request.request());
    if out.is_json() {
        out.json(&explanation);
    } else {
        out.print(&explanation.to_string());
    }
    Ok(if explanation.decision.is_allowed() {
        Exit::Ok
    } else {
        Exit::Failure
    })
}
