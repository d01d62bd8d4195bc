//! The `topicguard` command line. The CLI ([`cli`]) belongs to the binary, not the library:
//! it uses only the library's public API, like any other program would.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
