//! The service's name and where it publishes its documents: shared by the
//! index operation that links to them, the spec builder that names the
//! service, and the server that routes to them.

pub const TITLE: &str = "Errand";

/// Where the server publishes the documents and the interactive docs.
pub const FULL_DOCUMENT_PATH: &str = "/openapi.json";
pub const GPT_DOCUMENT_PATH: &str = "/openapi/gpt-actions.json";
pub const DOCS_PATH: &str = "/docs";
/// The user-facing actions as OpenAI function-calling tools.
pub const OPENAI_TOOLS_PATH: &str = "/tools/openai.json";
