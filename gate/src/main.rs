//! `surgegate-gate --config FILE`: starts the gate and prints `listening on http://ADDR` once
//! it accepts connections. `--check` reads and checks the file and exits. Exit status 2 for a
//! refused configuration, 1 for a failure to start.

#[cfg(not(loom))]
use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(not(loom))]
const USAGE: &str = "usage: surgegate-gate --config FILE [--check]";

/// Under `--cfg loom` (the crate's loom models, built for the whole workspace) the gate's
/// library is empty: this binary only says so.
#[cfg(loom)]
fn main() -> ExitCode {
    eprintln!("surgegate-gate: this is a loom build of the workspace; build without --cfg loom");
    ExitCode::FAILURE
}

#[cfg(not(loom))]
fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut config, mut check) = (None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => config = args.next().map(PathBuf::from),
            "--check" => check = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}; {USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = config else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let settings = match surgegate_gate::Settings::load(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("surgegate-gate: the configuration was refused: {e}");
            return ExitCode::from(2);
        }
    };
    if check {
        println!("{}: the configuration is good", path.display());
        return ExitCode::SUCCESS;
    }
    surgegate_gate::log::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("surgegate-gate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(surgegate_gate::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("surgegate-gate: {e}");
            ExitCode::FAILURE
        }
    }
}
