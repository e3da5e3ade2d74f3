//! The `earlystart` binary: parse arguments, set up logging, run, map the outcome to an
//! exit code (0 clean, 1 ran with rejections, 2 failed).

use clap::Parser;

fn main() {
    let cli = earlystart::cli::Cli::parse();
    earlystart::cli::init_tracing(cli.log_json);
    let code = match earlystart::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
