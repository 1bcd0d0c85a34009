//! The `errand` command line: serve, migrate, openapi, tools, token.

use std::{process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use errand::{
    App,
    auth::{KeyRing, Resource, ScopeSet, grants},
    config::{
        AddressArgs, AuthSettings, DatabaseArgs, LogArgs, PublicUrl, SealingArgs, ServeArgs,
        SigningArgs,
    },
    db,
    oauth::clients::{self, GrantType, NewClient},
    operations,
    spec::{self, Documents},
    telemetry,
    tools::{self, Catalog},
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
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start; boxing would only move the bytes"
)]
enum Command {
    /// Run the HTTP service (applies pending migrations first).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseOnly),
    /// Print the OpenAPI document, or rewrite the committed ones under openapi/.
    Openapi(OpenapiArgs),
    /// Print the user-facing actions as function-calling tool definitions.
    Tools(ToolsArgs),
    /// Print a signed access token for a user (created if missing), for
    /// development and integrators.
    Token(TokenArgs),
    /// Register and manage OAuth clients (a GPT, an integration).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Build what a ChatGPT plugin submission takes.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Write the plugin bundle (a ZIP: plugin.json, the Skill, mcp.json,
    /// the icon, test prompts and tool-hint justifications) to upload on
    /// OpenAI's platform.
    Bundle(PluginBundleArgs),
}

#[derive(Debug, Args)]
struct PluginBundleArgs {
    /// Where to write the archive.
    #[arg(long, default_value = "errand-plugin.zip")]
    out: std::path::PathBuf,
    /// Who publishes the plugin, as the listing shows it.
    #[arg(long, env = "ERRAND_PLUGIN_DEVELOPER_NAME", default_value = "")]
    developer_name: String,
    /// The listing's website link (https).
    #[arg(long, env = "ERRAND_PLUGIN_WEBSITE_URL", default_value = "")]
    website_url: String,
    /// Where users get help (https).
    #[arg(long, env = "ERRAND_PLUGIN_SUPPORT_URL", default_value = "")]
    support_url: String,
    /// The privacy policy (https).
    #[arg(long, env = "ERRAND_PLUGIN_PRIVACY_URL", default_value = "")]
    privacy_url: String,
    /// The terms of service (https).
    #[arg(long, env = "ERRAND_PLUGIN_TERMS_URL", default_value = "")]
    terms_url: String,
    /// A recording of the plugin in use, for the first review (optional).
    #[arg(long, env = "ERRAND_PLUGIN_DEMO_URL")]
    demo_url: Option<String>,
    #[command(flatten)]
    address: AddressArgs,
}

impl Command {
    /// What is logged unless `--log`/`ERRAND_LOG` says otherwise: the
    /// service and migrations report their progress; one-shot commands print
    /// their result and only warnings besides.
    fn default_log_filter(&self) -> &'static str {
        match self {
            Self::Serve(_) | Self::Migrate(_) => "info,sqlx::postgres::notice=warn",
            _ => "warn",
        }
    }
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Register a client; prints its id and, once, its secret.
    Create(ClientCreateArgs),
    /// List registered clients.
    List(DatabaseOnly),
    /// Replace a client's secret; prints the new one once.
    RotateSecret(ClientIdArgs),
    /// Delete a client: every token issued to it stops working.
    Delete(ClientIdArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("redirects").args(["gpt", "redirect_uri"]).multiple(false)))]
struct ClientCreateArgs {
    /// A name people recognise; shown on the consent page.
    #[arg(long)]
    name: String,
    /// The GPT's id (g-…, from the GPT editor's address bar once saved):
    /// registers both ChatGPT callback URLs.
    #[arg(long)]
    gpt: Option<String>,
    /// A redirect URI (repeatable), matched exactly.
    #[arg(long = "redirect-uri")]
    redirect_uri: Vec<String>,
    /// Space-separated scopes the client may ask for.
    #[arg(long, default_value = "tasks:read tasks:write")]
    scope: String,
    /// Grant type (repeatable): authorization_code (default) or client_credentials.
    #[arg(long = "grant")]
    grant: Vec<String>,
    /// A public client (no secret; must use PKCE), e.g. a mobile app.
    #[arg(long)]
    public: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Debug, Args)]
struct ClientIdArgs {
    /// The client id (errand-…).
    client_id: String,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Debug, Args)]
struct DatabaseOnly {
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Debug, Args)]
struct KeysArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The key that seals stored signing keys (ERRAND_WEBHOOK_SECRET_KEY).
    #[command(flatten)]
    sealing: SealingArgs,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Start signing with a new key; the old one keeps verifying until its
    /// tokens expire. Prints the new kid.
    Rotate(KeysArgs),
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Delete a user and everything they own; their tokens stop working.
    Delete(UserDeleteArgs),
}

#[derive(Debug, Args)]
struct UserDeleteArgs {
    /// The user's email address.
    email: String,
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
struct ToolsArgs {
    /// The tool format.
    #[arg(long, value_enum)]
    format: ToolFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ToolFormat {
    /// OpenAI function calling (Chat Completions `tools`, strict schemas);
    /// also served at /tools/openai.json.
    Openai,
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
    /// Which door the token opens: `api` (the HTTP API) or `mcp` (the MCP
    /// endpoint). Each accepts only its own tokens.
    #[arg(long, default_value = "api", value_parser = parse_resource)]
    resource: Resource,
    #[command(flatten)]
    address: AddressArgs,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    signing: SigningArgs,
}

const MAX_TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

fn parse_resource(raw: &str) -> Result<Resource, String> {
    match raw {
        "api" => Ok(Resource::Api),
        "mcp" => Ok(Resource::Mcp),
        other => Err(format!("`{other}` is not a resource; use api or mcp")),
    }
}

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
    telemetry::init(&cli.log, cli.command.default_log_filter());
    errand::install_crypto_provider();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Openapi(args) => openapi(args),
        Command::Tools(args) => tools_command(&args),
        Command::Token(args) => token(args).await,
        Command::Clients(command) => clients_command(command).await,
        Command::Keys(KeysCommand::Rotate(args)) => rotate_keys(args).await,
        Command::Users(UsersCommand::Delete(args)) => delete_user(args).await,
        Command::Plugin(PluginCommand::Bundle(args)) => plugin_bundle(&args),
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
    errand::serving::serve(args.settings()?).await?;
    Ok(())
}

async fn migrate(args: DatabaseOnly) -> Result<(), Failure> {
    let mut settings = args.database.settings();
    // A migration may rightly run long (building an index on a big table).
    settings.statement_timeout = None;
    db::connect_and_migrate(&settings).await?;
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
    let documents = Documents::build(operations::detached(&url), &url)?;
    let document = if args.gpt {
        &documents.gpt
    } else {
        &documents.full
    };
    print!("{}", Documents::render(document));
    Ok(())
}

fn plugin_bundle(args: &PluginBundleArgs) -> Result<(), Failure> {
    let listing = errand::plugin::Listing {
        developer_name: args.developer_name.clone(),
        website_url: args.website_url.clone(),
        support_url: args.support_url.clone(),
        privacy_policy_url: args.privacy_url.clone(),
        terms_of_service_url: args.terms_url.clone(),
        demo_recording_url: args.demo_url.clone().filter(|u| !u.is_empty()),
    };
    let catalog = Catalog::from_documents(&Documents::committed()?)?;
    let archive = errand::plugin::bundle(&args.address.public_url()?, &listing, &catalog)?;
    std::fs::write(&args.out, archive)
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

fn tools_command(args: &ToolsArgs) -> Result<(), Failure> {
    let catalog = Catalog::from_documents(&Documents::committed()?)?;
    let tools = match args.format {
        ToolFormat::Openai => tools::openai::chat_completions_tools(&catalog),
    };
    print!("{}", Documents::render(&tools));
    Ok(())
}

async fn token(args: TokenArgs) -> Result<(), Failure> {
    let email = EmailAddress::parse(&args.user)?;
    let scopes = ScopeSet::parse(&args.scope)?;
    let settings = AuthSettings {
        signing_key_file: args.signing.signing_key_file.clone(),
        sealing_key: args.signing.sealing.sealing_key(),
        ..AuthSettings::default()
    };
    let app = App::start(
        &args.database.settings(),
        args.address.public_url()?,
        &settings,
    )
    .await?;
    let user = users::store::find_or_create(&app.db, &email).await?;
    let token = grants::developer_token(
        &app.db,
        app.tokens(),
        user.id,
        &scopes,
        args.ttl,
        args.resource,
    )
    .await?;
    println!("{token}");
    Ok(())
}

async fn clients_command(command: ClientsCommand) -> Result<(), Failure> {
    match command {
        ClientsCommand::Create(args) => {
            let mut redirect_uris = args.redirect_uri.clone();
            if let Some(gpt) = &args.gpt {
                redirect_uris.extend(clients::gpt_redirect_uris(gpt)?);
            }
            let grant_types = if args.grant.is_empty() {
                vec![GrantType::AuthorizationCode]
            } else {
                args.grant
                    .iter()
                    .map(|g| {
                        GrantType::parse(g).ok_or_else(|| {
                            format!(
                                "unknown grant `{g}`; use authorization_code or client_credentials"
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            let db = db::connect_and_migrate(&args.database.settings()).await?;
            let (client, secret) = clients::create(
                &db,
                NewClient {
                    name: args.name,
                    redirect_uris,
                    scopes: ScopeSet::parse(&args.scope)?,
                    grant_types,
                    public: args.public,
                },
            )
            .await?;
            println!("client_id:     {}", client.id);
            match secret {
                Some(secret) => {
                    println!("client_secret: {secret}   (shown once; only its hash is kept)")
                }
                None => println!("client_secret: none (public client: use PKCE with S256)"),
            }
            for uri in &client.redirect_uris {
                println!("redirect_uri:  {uri}");
            }
            println!("scope:         {}", client.scopes);
        }
        ClientsCommand::List(args) => {
            let db = db::connect_and_migrate(&args.database.settings()).await?;
            for client in clients::list(&db).await? {
                let grants: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    client.id,
                    client.name,
                    if client.public {
                        "public"
                    } else {
                        "confidential"
                    },
                    grants.join(","),
                    client.scopes,
                    client.redirect_uris.join(" "),
                );
            }
        }
        ClientsCommand::RotateSecret(args) => {
            let db = db::connect_and_migrate(&args.database.settings()).await?;
            let secret = clients::rotate_secret(&db, &args.client_id).await?;
            println!("client_secret: {secret}   (shown once; the old secret no longer works)");
        }
        ClientsCommand::Delete(args) => {
            let db = db::connect_and_migrate(&args.database.settings()).await?;
            clients::delete(&db, &args.client_id).await?;
            eprintln!("deleted {}; its tokens no longer work", args.client_id);
        }
    }
    Ok(())
}

async fn delete_user(args: UserDeleteArgs) -> Result<(), Failure> {
    let email = EmailAddress::parse(&args.email)?;
    let db = db::connect_and_migrate(&args.database.settings()).await?;
    let user = users::store::find_by_email(&db, &email)
        .await?
        .ok_or_else(|| format!("there is no user {email}"))?;
    users::store::delete(&db, user.id).await?;
    eprintln!("deleted {email} and their tasks; their tokens no longer work");
    Ok(())
}

async fn rotate_keys(args: KeysArgs) -> Result<(), Failure> {
    let db = db::connect_and_migrate(&args.database.settings()).await?;
    let sealer = errand::sealing::Sealer::new(db.clone(), args.sealing.sealing_key());
    println!("{}", KeyRing::rotate(&db, &sealer).await?);
    Ok(())
}
