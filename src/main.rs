//! The `topicguard` command line: dispatches to [`topicguard::cli`].

fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
