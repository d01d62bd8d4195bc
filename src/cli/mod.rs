//! The `topicguard` command line: the clap structure and the dispatch, nothing else.
//!
//! Each subcommand lives in its own module and returns an [`Exit`]: 0 ok, 1 denied or a
//! failed test (or `fmt --check` found work), 2 a usage, policy or test-file error. The
//! global `--format text|json` applies to every command, usage errors included (a usage
//! error in JSON mode is an error document on stdout), and `--color auto|always|never`
//! (with `NO_COLOR`) to every coloured report. This module must never hold a command's
//! logic; it only parses arguments and calls the command.

mod authz;
mod aws;
mod batch;
mod bench;
mod check;
mod compile;
mod decide;
mod demo;
mod dev;
mod diff;
mod fmt;
mod gateway;
pub mod identity_args;
mod mobile;
pub mod output;
mod serve;
pub mod serve_config;
mod service;
mod test;
mod verify;

pub use output::{ColorChoice, Exit, Format};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// topicguard: an MQTT authorization engine driven by a policy file.
///
/// A policy says which identities may connect, publish, retain, subscribe and receive on
/// which topics. These commands check, format, compile and test policies, and answer single
/// authorization questions with an explanation citing the deciding rule.
///
/// Exit status: 0 ok or allowed; 1 denied, a test failed, or `fmt --check` found a file to
/// reformat; 2 usage error, or a policy or test file that cannot be used.
#[derive(Debug, Parser)]
#[command(name = "topicguard", version, max_term_width = 100)]
pub struct Cli {
    /// Output format: `text` for people (diagnostics with source snippets on stderr), or
    /// `json`: JSON on stdout, errors, diagnostics and usage errors included, in the
    /// versioned schema of docs/json-output.md.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Colour diagnostics and logs: `auto` (when stderr is a terminal and `NO_COLOR` is
    /// unset or empty), `always` or `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check policy files: print warnings and errors, and a summary of each file
    /// (identities with their kind and attributes, sets, rule counts by effect and action).
    ///
    /// Exits 2 if any file has errors.
    Check(check::CheckArgs),
    /// Decide one request for one identity and explain the answer: the deciding rule with
    /// its file:line, every other matching rule, and the captured levels.
    ///
    /// Exits 0 if allowed, 1 if denied.
    ///
    /// Example: topicguard decide --policy policies/xfinity.policy --identity mobile
    /// --attr pid=P1 --attr aid=A1 --attr jti=J1 publish c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1
    Decide(decide::DecideArgs),
    /// Run policy test files (*.test.toml) through the compiled engine and the reference
    /// interpreter: a case passes when both give the expected answer.
    ///
    /// Prints each failing case with its explanation; the last line is `N passed, N failed`.
    /// Exits 1 if any case failed, 2 if a test file or its policy cannot be used.
    Test(test::TestArgs),
    /// Rewrite policy files in place in the canonical layout (comments kept).
    ///
    /// Prints `formatted FILE` for each file it rewrote. With --check nothing is written:
    /// a unified diff of what would change is printed and the exit is 1 if any file would
    /// change. A file that does not parse is never touched (exit 2).
    Fmt(fmt::FmtArgs),
    /// Compile a policy and print statistics: rules, identities, automaton nodes, literal
    /// sets, attribute slots, patterns, approximate heap bytes, and how long loading and
    /// compiling took. With --dump, also print the automaton.
    Compile(compile::CompileArgs),
    /// Generate development-only credentials: `dev pki` (a test CA with gateway and service
    /// certificates) and `dev token` (a signed JWT and its JWKS). Never for production.
    Dev(dev::DevArgs),
    /// Run a residential gateway: presence with a retained last will, simulated
    /// light, thermostat and door lock reported to their device shadows, desired-state
    /// deltas applied, a multi-part inventory request to a service. Runs until Ctrl-C.
    Gateway(gateway::GatewayArgs),
    /// Run a backend service that answers requests addressed to its service id with
    /// success|failure responses. Runs until Ctrl-C.
    Service(service::ServiceArgs),
    /// One mobile-app operation: a service request, or setting or reading a device shadow.
    Mobile(mobile::MobileArgs),
    /// The whole flow in one command: development credentials, the broker with the policy,
    /// a service, two gateways of two accounts and a mobile app, a scripted scenario
    /// printing each step with the policy decision and rule behind it.
    ///
    /// Runs from any directory (the shipped policy is built in); its keys go to a private
    /// temporary directory removed however it ends, Ctrl-C included. Exits 0 when every
    /// step happened, 1 with the step that did not, 2 when it cannot start or is interrupted.
    Demo(demo::DemoArgs),
    /// Run the reference MQTT broker: TCP, TLS, WebSocket and secure WebSocket listeners,
    /// JWT and client-certificate authentication, the policy enforced on every packet and
    /// reloaded on SIGHUP or when its file changes.
    ///
    /// Example: topicguard serve --config topicguard.example.toml
    Serve(serve::ServeArgs),
    /// Serve authorization over HTTP to clustered brokers: RabbitMQ's HTTP auth backend
    /// (POST /rabbitmq/{user,vhost,resource,topic}), EMQX 5's HTTP authentication and
    /// authorization (/emqx/{authn,authz}) and mosquitto-go-auth's HTTP backend
    /// (/goauth/{user,superuser,acl}); GET /healthz. The CONNECT password is a JWT; each
    /// broker node runs its own instance (see docs/deployment.md).
    ///
    /// Example: topicguard authz --policy policies/xfinity.policy --listen 127.0.0.1:8089
    /// --jwks jwks.json
    Authz(authz::AuthzArgs),
    /// The AWS IoT Core target: `aws policy` prints the AWS IoT policy documents granting
    /// one identity what the policy grants it (never more); `aws authorizer` verifies a JWT
    /// and prints the custom authorizer Lambda's response.
    ///
    /// Example: topicguard aws policy --policy policies/xfinity.policy --identity mobile
    /// --attr pid=P1 --attr aid=A1 --attr jti=J1 --region us-east-1 --account 123456789012
    Aws(aws::AwsArgs),
    /// Load-test an MQTT broker on a loopback address: N publishers and M subscribers at
    /// QoS 0 or 1, reporting messages/s and latency percentiles; or connects/s
    /// (--connects N); or hold N idle connections (--idle N) while memory is measured.
    Bench(bench::BenchArgs),
    /// Prove the policy's `assert` lines and the built-in isolation properties.
    Verify(verify::VerifyArgs),
    /// What a new policy grants and takes away, with witness requests (exit 1 when it adds).
    Diff(diff::DiffArgs),
}

impl Command {
    /// The subcommand's name, as typed and as stamped into its JSON documents.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Check(_) => "check",
            Command::Decide(_) => "decide",
            Command::Test(_) => "test",
            Command::Fmt(_) => "fmt",
            Command::Compile(_) => "compile",
            Command::Dev(_) => "dev",
            Command::Gateway(_) => "gateway",
            Command::Service(_) => "service",
            Command::Mobile(_) => "mobile",
            Command::Demo(_) => "demo",
            Command::Serve(_) => "serve",
            Command::Authz(_) => "authz",
            Command::Aws(_) => "aws",
            Command::Bench(_) => "bench",
            Command::Verify(_) => "verify",
            Command::Diff(_) => "diff",
        }
    }
}

/// Runs the command line of this process.
pub fn run() -> ExitCode {
    run_args(std::env::args_os().collect()).into()
}

/// Runs a command line given as its arguments (the program name first).
pub fn run_args(args: Vec<OsString>) -> Exit {
    let early = EarlyFlags::scan(&args);
    let clap_color = match early.color {
        ColorChoice::Always => clap::ColorChoice::Always,
        ColorChoice::Never => clap::ColorChoice::Never,
        ColorChoice::Auto if early.color.enabled() => clap::ColorChoice::Auto,
        ColorChoice::Auto => clap::ColorChoice::Never,
    };
    let parsed = Cli::command()
        .color(clap_color)
        .try_get_matches_from(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    match parsed {
        Ok(cli) => run_cli(cli),
        Err(e) if early.json && e.use_stderr() => usage_error_json(&e, &args),
        // --help and --version exit 0; usage errors exit 2 (clap's convention matches ours).
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
        }
    }
}

/// `--format` and `--color` read from the raw arguments, so that a command line clap
/// rejects is still reported in the format and colours asked for.
#[derive(Debug, Default)]
struct EarlyFlags {
    json: bool,
    color: ColorChoice,
}

impl EarlyFlags {
    fn scan(args: &[OsString]) -> EarlyFlags {
        let mut flags = EarlyFlags::default();
        let words: Vec<&str> = args.iter().skip(1).filter_map(|a| a.to_str()).collect();
        let until_dashes = words.iter().position(|w| *w == "--").unwrap_or(words.len());
        for (i, word) in words[..until_dashes].iter().enumerate() {
            let value = |flag: &str| match word.strip_prefix(flag) {
                Some("") => words.get(i + 1).copied(),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            };
            if let Some(format) = value("--format") {
                flags.json = format == "json";
            }
            match value("--color") {
                Some("always") => flags.color = ColorChoice::Always,
                Some("never") => flags.color = ColorChoice::Never,
                Some("auto") => flags.color = ColorChoice::Auto,
                _ => {}
            }
        }
        flags
    }
}

/// A clap usage error as a JSON error document on stdout (exit 2).
fn usage_error_json(error: &clap::Error, args: &[OsString]) -> Exit {
    let cli = Cli::command();
    let command = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| cli.get_subcommands().any(|c| c.get_name() == *a));
    let rendered = error.render().to_string();
    let message = rendered.trim_end().trim_start_matches("error: ");
    let document = UsageErrorDocument {
        schema_version: output::SCHEMA_VERSION,
        command,
        error: serde_json::json!({ "kind": "usage", "message": message, "diagnostics": [] }),
    };
    if let Ok(text) = serde_json::to_string(&document) {
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
    Exit::Usage
}

/// A usage error clap found, as JSON: `command` is null when no subcommand was recognised.
#[derive(serde::Serialize)]
struct UsageErrorDocument<'a> {
    schema_version: u32,
    command: Option<&'a str>,
    error: serde_json::Value,
}

/// Runs a parsed command line.
pub fn run_cli(cli: Cli) -> Exit {
    let out = output::Out {
        format: cli.format,
        color: cli.color.enabled(),
        command: cli.command.name(),
    };
    match &cli.command {
        Command::Check(args) => check::run(args, out),
        Command::Decide(args) => decide::run(args, out),
        Command::Test(args) => test::run(args, out),
        Command::Fmt(args) => fmt::run(args, out),
        Command::Compile(args) => compile::run(args, out),
        Command::Verify(args) => verify::run(args, out),
        Command::Diff(args) => diff::run(args, out),
        Command::Dev(args) => dev::run(args, out),
        Command::Gateway(args) => gateway::run(args, out),
        Command::Service(args) => service::run(args, out),
        Command::Mobile(args) => mobile::run(args, out),
        Command::Demo(args) => demo::run(args, out),
        Command::Serve(args) => serve::run(args, out),
        Command::Authz(args) => authz::run(args, out),
        Command::Aws(args) => aws::run(args, out),
        Command::Bench(args) => bench::run(args, out),
    }
}

/// Policy file paths: at least one.
#[derive(Debug, clap::Args)]
pub struct PolicyFiles {
    /// Policy files.
    #[arg(value_name = "POLICY", required = true)]
    pub files: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn format_and_color_are_read_before_clap_parses() {
        let flags = EarlyFlags::scan(&words("tg --format json chek --color=never"));
        assert!(flags.json);
        assert_eq!(flags.color, ColorChoice::Never);
        let flags = EarlyFlags::scan(&words("tg decide --format=json --color always"));
        assert!(flags.json);
        assert_eq!(flags.color, ColorChoice::Always);
        let flags = EarlyFlags::scan(&words("tg fmt -- --format json"));
        assert!(!flags.json, "after `--` a word is a file name");
    }

    #[test]
    fn the_clap_structure_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_and_argument_is_documented() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            assert!(sub.get_about().is_some(), "{} has no help", sub.get_name());
            for arg in sub.get_arguments() {
                let documented = arg.get_help().is_some() || arg.get_id() == "help";
                assert!(
                    documented,
                    "{} {} has no help",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}
