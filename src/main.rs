//! The `switchboard` command: parse configuration, set up logging, run a subcommand. Errors a
//! person can fix (a bad URL, an unreachable database) end in one clear line and exit code 1.

use std::process::ExitCode;

use clap::Parser;
use switchboard::{
    admin,
    config::{Cli, Command, Config, DatabaseUrl},
    shutdown, startup, telemetry,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    let command = cli.command.unwrap_or(Command::Serve);
    let quiet_default = if matches!(command, Command::Serve | Command::Worker) {
        "info"
    } else {
        "warn"
    };
    telemetry::init_subscriber(telemetry::get_subscriber(
        quiet_default,
        config.log_format == "json",
        std::io::stderr,
    ));
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            startup::connect_store(&config).await?;
            println!("migrations applied to {}", config.database().redacted());
            Ok(())
        }
        Command::Worker => {
            let (trigger, stopping) = shutdown::channel();
            tokio::spawn(async move {
                shutdown::signal().await;
                trigger.trigger();
            });
            if config.redis_url.is_none() {
                tracing::warn!("without REDIS_URL a separate worker cannot see who is online on the web nodes: everyone counts as offline");
            }
            let ctx = startup::build_context(config, stopping.clone()).await?;
            tracing::info!("notification worker running");
            startup::spawn_worker(&ctx)?.await?;
            Ok(())
        }
        Command::Demo => {
            std::fs::create_dir_all(&config.data_dir)?;
            let store = startup::connect_store(&config).await?;
            let login = admin::ensure_demo(&store, &config.data_dir).await?;
            println!("demo operator: {} / {}", login.email, login.password);
            Ok(())
        }
        Command::Admin(admin_command) => {
            let store = startup::connect_store(&config).await?;
            admin::run(&store, admin_command).await
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let embedded = matches!(config.database(), DatabaseUrl::Sqlite(_));
    let seed_demo = config.demo && embedded;
    let printed_admin_token = config.admin_token.is_none();
    let (trigger, stopping) = shutdown::channel();
    tokio::spawn(async move {
        shutdown::signal().await;
        tracing::info!("shutting down");
        trigger.trigger();
    });
    let app = startup::Application::build(config, stopping).await?;
    let ctx = app.context().clone();
    let base = format!("http://{}", app.local_addr());
    tracing::info!(address = %app.local_addr(), database = %ctx.config.database().redacted(), "listening");

    println!();
    println!("  Switchboard is running at {base}");
    println!("  Customer widget:   {base}/");
    println!("  Operator console:  {base}/console");
    println!("  API description:   {base}/openapi.json");
    let demo_exists = ctx
        .store
        .operator_credentials(admin::DEMO_OPERATOR_EMAIL)
        .await?
        .is_some();
    if seed_demo && (demo_exists || ctx.store.count_companies().await? == 0) {
        match admin::ensure_demo(&ctx.store, &ctx.config.data_dir).await {
            Ok(login) => println!("  Demo operator:     {} / {}", login.email, login.password),
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "demo company not available")
            }
        }
    }
    if printed_admin_token {
        println!(
            "  Admin token:       {} (kept in {})",
            ctx.admin_token.expose(),
            ctx.config.data_dir.join("admin-token").display()
        );
    }
    println!();

    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}
