//! `sendblue-webhooks`: the Sendblue side of the deployment (`--help` lists the commands).

mod api;
mod args;
mod commands;
mod doctor;
mod error;
mod http;
mod plan;
mod send;
mod stack;
mod webhooks;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match commands::run(args::Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_code()
        }
    }
}
