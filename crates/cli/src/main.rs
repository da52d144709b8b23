//! The `runyard` command.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    runyard_cli::main_with(runyard_cli::default_registry)
}
