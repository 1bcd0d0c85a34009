//! The `errand` command line: serve, migrate, openapi, token.

use std::{process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use errand::{
    App,
    auth::ScopeSet,
    config::{AddressArgs, DatabaseArgs, LogArgs, PublicUrl, SigningArgs},
    db, server,
    spec::{self, Documents},
    telemetry,
    users::{self, EmailAddress},
};

#[derive(Debug, Parser)]
#[command(
    name = "errand",
    version,
    about = "Tasks and reminders for ChatGPT users, as GPT Actions"
)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (applies pending migrations first).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(MigrateArgs),
    /// Print the OpenAPI document, or rewrite the committed ones under openapi/.
    Openapi(OpenapiArgs),
    /// Print a signed access token for a user (created if missing), for
    /// development and integrators.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    address: AddressArgs,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    signing: SigningArgs,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "ERRAND_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
}

#[derive(Debug, Args)]
struct MigrateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Debug, Args)]
struct OpenapiArgs {
    /// Rewrite openapi/errand.json and openapi/gpt-actions.json in the current directory.
    #[arg(long)]
    write: bool,
    /// Print the GPT Actions document instead of the full one.
    #[arg(long, conflicts_with = "write")]
    gpt: bool,
    /// Server URL to put in the printed document (the committed documents
    /// always use https://errand.example.com).
    #[arg(long, env = "ERRAND_PUBLIC_URL")]
    public_url: Option<String>,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The user's email address.
    #[arg(long)]
    user: String,
    /// Space-separated scopes to grant.
    #[arg(long, default_value = "tasks:read tasks:write")]
    scope: String,
    /// Lifetime, e.g. 90s, 15m, 1h, 7d (at most 365d).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    #[command(flatten)]
    address: AddressArgs,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    signing: SigningArgs,
}

const MAX_TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

fn parse_ttl(raw: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(raw)
        .map_err(|e| format!("`{raw}` is not a duration such as 90s, 15m or 1h ({e})"))?;
    if ttl < Duration::from_secs(1) || ttl > MAX_TOKEN_TTL {
        return Err(format!("`{raw}` is out of range: use between 1s and 365d"));
    }
    Ok(ttl)
}

/// glibc's allocator spends a noticeable share of each request in
/// malloc/free bookkeeping under many small allocations on several threads;
/// mimalloc does not (see bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.log);
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Openapi(args) => openapi(args),
        Command::Token(args) => token(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut message = format!("error: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let public_url = args.address.public_url()?;
    let acceptor = poem::listener::Listener::into_acceptor(poem::listener::TcpListener::bind(
        args.address.listen,
    ))
    .await
    .map_err(|e| format!("cannot listen on {}: {e}", args.address.listen))?;
    let app = App::start(
        &args.database.settings(),
        public_url,
        args.signing.signing_key_file.as_deref(),
    )
    .await?;
    tracing::info!(public_url = %app.public_url, "errand ready");
    server::serve(
        acceptor,
        app.endpoint()?,
        server::shutdown_signal(),
        args.shutdown_grace,
    )
    .await?;
    Ok(())
}

async fn migrate(args: MigrateArgs) -> Result<(), Failure> {
    db::connect_and_migrate(&args.database.settings()).await?;
    tracing::info!("migrations applied");
    Ok(())
}

fn openapi(args: OpenapiArgs) -> Result<(), Failure> {
    if args.write {
        Documents::committed()?.write(std::path::Path::new("."))?;
        eprintln!(
            "wrote {} and {}",
            spec::FULL_DOCUMENT_FILE,
            spec::GPT_DOCUMENT_FILE
        );
        return Ok(());
    }
    let url = PublicUrl::parse(
        args.public_url
            .as_deref()
            .unwrap_or(spec::COMMITTED_PUBLIC_URL),
    )?;
    let documents = Documents::build(server::detached_apis(&url), &url)?;
    let document = if args.gpt {
        &documents.gpt
    } else {
        &documents.full
    };
    print!("{}", Documents::render(document));
    Ok(())
}

async fn token(args: TokenArgs) -> Result<(), Failure> {
    let email = EmailAddress::parse(&args.user)?;
    let scopes = ScopeSet::parse(&args.scope)?;
    let app = App::start(
        &args.database.settings(),
        args.address.public_url()?,
        args.signing.signing_key_file.as_deref(),
    )
    .await?;
    let user = users::store::find_or_create(&app.db, &email).await?;
    let token = app.tokens.mint(user.id, &scopes, args.ttl, None)?;
    println!("{token}");
    Ok(())
}
