//! The `topicguard` command line: dispatches to [`topicguard::cli`].

fn main() -> std::process::ExitCode {
    topicguard::cli::run()
}
