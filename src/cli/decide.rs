//! `topicguard decide`: one request, one identity, the full explanation.
//!
//! Loads and compiles the policy, binds the identity (see [`super::identity_args`]) and
//! prints the engine's [`topicguard::decide::Explanation`]: its text form, or its JSON form with
//! `--format json` (with the request's `retain` flag). Exits 0 when allowed and 1 when
//! denied. With `--batch`, requests come as JSON lines on stdin (see [`super::batch`]). It
//! never changes the policy.

use super::identity_args::IdentityArgs;
use super::output::{CliError, Exit, Out, decision_json};
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

    /// Read requests as JSON lines on stdin (one request per line: `identity` and `attrs`,
    /// or a `jwt`/`cert` file verified with the anchor options; `client_id`, `action`,
    /// `topic`, `retain`) and write one JSON decision per line; a bad line gets an error
    /// document with its line number and the rest go on. Exit: the worst of the lines
    /// (0 all allowed, 1 any denied, 2 any bad line). See docs/json-output.md.
    #[arg(long, conflicts_with_all = ["identity", "attrs", "jwt", "cert", "client_id"])]
    pub batch: bool,

    #[command(subcommand)]
    pub request: Option<RequestArgs>,
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
    /// The engine's request for these arguments.
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
    if args.batch {
        if args.request.is_some() {
            return Err(CliError::Usage(
                "--batch reads its requests from stdin: give no request on the command line".into(),
            ));
        }
        let trust = args.identity.trust_files()?;
        return Ok(super::batch::run(
            &policy,
            &engine,
            &trust,
            std::io::stdin().lock(),
            out,
        ));
    }
    let Some(request) = &args.request else {
        return Err(CliError::Usage(
            "give the request to decide (connect, publish, subscribe or receive), or --batch"
                .into(),
        ));
    };
    let (identity, client_id) = args.identity.resolve(&policy.checked)?;
    let session = engine.bind(&identity, &client_id);
    let request = request.request();
    let explanation = engine.explain(&session, request);
    if out.is_json() {
        out.json(&decision_json(&explanation, request));
    } else {
        out.print(&explanation.to_string());
    }
    Ok(if explanation.decision.is_allowed() {
        Exit::Ok
    } else {
        Exit::Failure
    })
}
