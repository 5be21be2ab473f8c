//! `switchboard`: run the contact center (`serve`), a seeded demo center (`demo`), or rotate
//! the master key for data at rest (`keys rotate`).

use std::process::ExitCode;
use switchboard::{demo, launch, App, Config};
use tokio::net::TcpListener;

const USAGE: &str = "\
Switchboard contact center

Usage: switchboard <command>

Commands:
  serve    run the contact center
  demo     run it with a demo center seeded (queues, hours, users admin, supervisor, agent1, agent2)
  keys rotate
           make a new master key current in the data directory's secret.key, seal every
           stored secret and re-wrap every file's key under it, then drop the old key; run it
           again if it was interrupted (stop the server first; see docs/http-security.md)
  help     show this text
  version  show the version

Configuration: switchboard.toml in the working directory (or the file SWITCHBOARD_CONFIG names),
overridden by SWITCHBOARD_DATABASE_URL, SWITCHBOARD_HTTP, SWITCHBOARD_DATA_DIR,
SWITCHBOARD_SESSION_HOURS, SWITCHBOARD_SECURE_COOKIES, SWITCHBOARD_DEMO_PASSWORD and
SWITCHBOARD_ADMIN_PASSWORD, SWITCHBOARD_SECRET_KEY and the limits in docs/http-security.md.
Logging: RUST_LOG (default info).
";

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let mut command = arguments.first().cloned().unwrap_or_default();
    // `rotate-secret-key` is the name rotation had before it also re-wrapped files.
    if command == "rotate-secret-key" {
        command = "keys".into();
    } else if command == "keys" && arguments.get(1).map(String::as_str) != Some("rotate") {
        eprint!("`keys` takes one command: `keys rotate`\n\n{USAGE}");
        return ExitCode::from(2);
    }
    match command.as_str() {
        "serve" | "demo" | "keys" => {}
        "version" | "--version" | "-V" => {
            println!("switchboard {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprint!("unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = if command == "keys" {
        runtime.block_on(rotate())
    } else {
        runtime.block_on(run(command == "demo"))
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn rotate() -> Result<(), String> {
    let config = Config::load().map_err(|e| e.to_string())?;
    let done = switchboard::vault::rotate(&config).await?;
    let files = &done.files;
    println!(
        "switchboard: master key {} is current{}",
        done.key,
        if done.resumed {
            " (finishing a rotation an earlier run left unfinished)"
        } else {
            ""
        }
    );
    println!("  {} stored secrets sealed under it", done.secrets);
    println!(
        "  {} files re-wrapped under it, {} already were, {} in clear from before encryption (left as they are)",
        files.rewrapped, files.current, files.clear
    );
    for (path, error) in &files.failed {
        eprintln!("  not re-wrapped: {}: {error}", path.display());
    }
    if !files.failed.is_empty() {
        return Err(format!(
            "{} files could not be re-wrapped; the old keys stay until they are (run `switchboard keys rotate` again)",
            files.failed.len()
        ));
    }
    if done.dropped_old_keys {
        println!(
            "  the old key was dropped from {}",
            config.data_dir.join(switchboard::vault::KEY_FILE).display()
        );
    } else if config.secret_key.is_some() && !config.secret_key_old.is_empty() {
        println!("  everything is under SWITCHBOARD_SECRET_KEY: remove SWITCHBOARD_SECRET_KEY_OLD");
    }
    Ok(())
}

async fn run(demo_mode: bool) -> Result<(), String> {
    let config = Config::load().map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(config.http)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.http))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let app = App::start(config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let shown_host = if address.ip().is_unspecified() {
        format!("127.0.0.1:{}", address.port())
    } else {
        address.to_string()
    };
    let base = format!("http://{shown_host}");
    if demo_mode {
        let generated = config.demo_password.is_none();
        let password = config
            .demo_password
            .clone()
            .unwrap_or_else(switchboard::secret::random_password);
        if password.chars().count() < switchboard::http::auth::MIN_PASSWORD {
            tracing::warn!("SWITCHBOARD_DEMO_PASSWORD is shorter than a real password should be; fine for a demo only");
        }
        let credentials = demo::seed(&app, password)
            .await
            .map_err(|e| format!("seeding the demo failed: {}", e.message))?;
        println!();
        println!(
            "Switchboard demo center is running on {} ({})",
            base,
            app.services.store.backend()
        );
        println!();
        println!("  Widget page      {base}/demo/  (a shop page with the chat widget)");
        println!("  Agent adapter    {base}/agent/  (sign in as agent1 or agent2)");
        println!("  Portal API       {base}/api/v1  (sign in: POST {base}/api/v1/auth/login)");
        println!("  API description  {base}/api/openapi.json");
        println!("  Live events      ws://{shown_host}/api/v1/events");
        println!("  Health, metrics  {base}/healthz  {base}/metrics");
        println!();
        if let Some(sip) = config.voice.sip {
            let host = config.voice.public_ip.map_or_else(
                || {
                    if sip.ip().is_unspecified() {
                        "127.0.0.1".to_owned()
                    } else {
                        sip.ip().to_string()
                    }
                },
                |ip| ip.to_string(),
            );
            println!(
                "  Voice            call sip:{}@{host}:{} (UDP or TCP): 1 for Sales, 2 for Support",
                demo::DEMO_NUMBER,
                sip.port()
            );
            println!("  SIP phones       agent1 and agent2 register at {host}:{} with the password below", sip.port());
            println!(
                "  Outbound calls   leave through sip:{} (9 for an outside line; SWITCHBOARD_DEMO_CARRIER moves it)",
                config.demo_carrier
            );
        }
        println!("  Users: admin, supervisor, agent1, agent2");
        println!(
            "  Password: {}{}",
            credentials.password,
            if generated {
                "  (generated; set SWITCHBOARD_DEMO_PASSWORD to choose one)"
            } else {
                ""
            }
        );
        println!(
            "  Apps API key: {}  secret: {}",
            credentials.api_key_id, credentials.api_secret
        );
        println!();
        println!("  Try: curl -c /tmp/sb.cookies -H 'content-type: application/json' \\");
        println!(
            "         -d '{{\"username\":\"admin\",\"password\":\"{}\"}}' {base}/api/v1/auth/login",
            credentials.password
        );
        println!("       curl -b /tmp/sb.cookies {base}/api/v1/queues");
        println!();
    } else {
        if let Some(password) = demo::ensure_first_admin(&app, config.admin_password.clone())
            .await
            .map_err(|e| e.message)?
        {
            println!("First start: created user `admin` with password {password}");
        }
        println!(
            "Switchboard is running on {base} ({})",
            app.services.store.backend()
        );
    }
    launch(app, listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return interrupt.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
    tracing::info!("shutting down");
}
