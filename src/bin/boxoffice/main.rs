//! The `boxoffice` binary: parses the command line and calls into the library (and, for
//! `boxoffice loadtest`, into the harness crate through [`loadtest::BoxofficeHost`]).

mod loadtest;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

// glibc's malloc spent a quarter of the hot path in contention and consolidation; mimalloc's
// per-thread heaps suit many small short-lived allocations (requests, messages, rows).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "boxoffice", version, about = "Ticket-booking backend: events, holds, orders, payments")]
struct Cli {
    /// Configuration file (BOXOFFICE_<SECTION>__<KEY> environment variables override it).
    #[arg(long, global = true, env = "BOXOFFICE_CONFIG", default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations and serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load-test a Boxoffice (or an embedded one) and check the seat invariant afterwards.
    Loadtest(Box<boxoffice_loadtest::LoadtestArgs>),
    /// Print the Postman collection of the API (also served at /postman.json).
    Postman {
        /// Where the collection's requests go (its `baseUrl` variable).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base_url: String,
    },
    /// Serve a trivial endpoint: the ceiling the load-test harness is compared against.
    #[command(hide = true)]
    CeilingServer {
        #[arg(long, default_value = "127.0.0.1:18090")]
        addr: std::net::SocketAddr,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match boxoffice::Config::load(Some(&cli.config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("boxoffice: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    // Only the server leaves a core to its committer and sets its own huge-page policy; the load
    // generator and the trivial server (the yardstick bench.sh measures against) keep a worker on
    // every core and the system's policy.
    if matches!(cli.command, None | Some(Command::Serve)) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        runtime.worker_threads(config.runtime.workers(cores));
        if let Err(e) = boxoffice::app::allow_huge_pages(config.runtime.huge_pages) {
            // Only a cost, never a fault: serve on with the system's policy.
            eprintln!("boxoffice: cannot set runtime.huge_pages = {}: {e}", config.runtime.huge_pages);
        }
    }
    match runtime.enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli, config)),
        Err(e) => {
            eprintln!("boxoffice: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: boxoffice::Config) -> std::process::ExitCode {
    boxoffice::telemetry::init(&config.log);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match boxoffice::Application::build(config).await {
            Ok(app) => app.run().await,
            Err(e) => Err(e),
        },
        Command::Migrate => migrate(&config).await,
        Command::Loadtest(args) => loadtest(*args, config).await,
        Command::CeilingServer { addr } => boxoffice_loadtest::trivial_server(addr).await,
        Command::Postman { base_url } => {
            println!("{:#}", boxoffice::http::postman::collection(&base_url, config.compat.enabled));
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "boxoffice failed");
            eprintln!("boxoffice: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn loadtest(args: boxoffice_loadtest::LoadtestArgs, config: boxoffice::Config) -> anyhow::Result<()> {
    let json = args.json.clone();
    let report = boxoffice_loadtest::run(args, &loadtest::BoxofficeHost(config)).await?;
    report.print();
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    }
    if !report.ok() {
        anyhow::bail!("the load test found 5xx responses, transport errors or a broken invariant");
    }
    Ok(())
}

async fn migrate(config: &boxoffice::Config) -> anyhow::Result<()> {
    let db = boxoffice::store::connect(config.database.url.expose(), 1).await?;
    boxoffice::store::migrate(&db).await?;
    tracing::info!("migrations applied");
    Ok(())
}
