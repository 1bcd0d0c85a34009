//! The committed OpenAPI documents are the contract: they must match what the
//! code generates, pass the GPT lint, and be what the server serves.

use errand::spec::{self, Documents, lint::lint, policy::OPERATIONS};
use serde_json::{Value, json};

use crate::common::TestApp;

const REGENERATE: &str =
    "the API changed; review and commit the new contract with `cargo run -- openapi --write`";

fn committed(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: {REGENERATE}", path.display()))
}

#[test]
fn committed_documents_match_the_code() {
    let documents = Documents::committed().unwrap();
    for (file, document) in [
        (spec::FULL_DOCUMENT_FILE, &documents.full),
        (spec::GPT_DOCUMENT_FILE, &documents.gpt),
    ] {
        assert!(
            committed(file) == Documents::render(document),
            "{file} is stale: {REGENERATE}"
        );
    }
}

#[test]
fn both_documents_pass_the_gpt_lint() {
    let documents = Documents::committed().unwrap();
    assert_eq!(lint(&documents.gpt), Vec::<String>::new());
    assert_eq!(lint(&documents.full), Vec::<String>::new());
}

fn operation_ids(document: &Value) -> Vec<String> {
    let mut ids: Vec<String> = spec::finish::operations(document)
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_gpt_document_has_the_task_actions_and_no_probes() {
    let documents = Documents::committed().unwrap();
    assert_eq!(
        operation_ids(&documents.gpt),
        [
            "cancelReminder",
            "completeTask",
            "createReminder",
            "createTask",
            "deleteTask",
            "getAgenda",
            "getMe",
            "getTask",
            "listReminders",
            "listTasks",
            "reopenTask",
            "updateTask"
        ]
    );
    assert!(operation_ids(&documents.full).contains(&"getReadiness".to_owned()));
    assert!(
        documents.gpt["components"]["schemas"]
            .get("Health")
            .is_none(),
        "unused schemas are pruned"
    );
}

#[test]
fn consequential_flags_follow_the_policy_table() {
    let documents = Documents::committed().unwrap();
    for (_, _, op) in spec::finish::operations(&documents.full) {
        let id = op["operationId"].as_str().unwrap();
        // Only what destroys data: a deleted task or subscription is gone.
        let expected = matches!(id, "deleteTask" | "deleteWebhook");
        assert_eq!(op["x-openai-isConsequential"], json!(expected), "{id}");
    }
    assert_eq!(OPERATIONS.len(), operation_ids(&documents.full).len());
}

#[test]
fn the_security_scheme_points_at_the_oauth_endpoints() {
    let documents = Documents::committed().unwrap();
    let flow =
        &documents.gpt["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
    assert_eq!(
        flow["authorizationUrl"],
        "https://errand.example.com/oauth/authorize"
    );
    assert_eq!(flow["tokenUrl"], "https://errand.example.com/oauth/token");
    assert_eq!(flow["scopes"].as_object().unwrap().len(), 2);
    assert_eq!(
        documents.gpt["servers"],
        json!([{ "url": "https://errand.example.com" }])
    );
}

#[tokio::test]
async fn the_server_serves_the_contract_with_its_own_url() {
    let app = TestApp::spawn().await;
    let served = app.get_json("/openapi/gpt-actions.json").await;
    assert_eq!(served["servers"], json!([{ "url": app.address }]));
    let committed: Value = serde_json::from_str(&committed(spec::GPT_DOCUMENT_FILE)).unwrap();
    let mut expected = committed
        .to_string()
        .replace(spec::COMMITTED_PUBLIC_URL, &app.address);
    expected = serde_json::from_str::<Value>(&expected)
        .unwrap()
        .to_string();
    assert_eq!(served.to_string(), expected);
    assert_eq!(
        lint(&app.get_json("/openapi.json").await),
        Vec::<String>::new()
    );

    let docs = app
        .client
        .get(app.url("/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        docs.contains("\"openapi\": \"3.1.0\""),
        "the docs page shows the finished document"
    );
}

#[test]
fn the_builder_kit_covers_every_gpt_action_and_fits_the_editor() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("actions");
    let instructions = std::fs::read_to_string(root.join("instructions.md")).unwrap();
    // The GPT editor takes at most 8,000 characters of instructions.
    assert!(
        instructions.chars().count() <= 8_000,
        "instructions.md is too long for the GPT editor"
    );
    let guide = std::fs::read_to_string(root.join("README.md")).unwrap();
    for id in operation_ids(&Documents::committed().unwrap().gpt) {
        assert!(
            instructions.contains(&id),
            "instructions.md never mentions {id}"
        );
        assert!(guide.contains(&id), "actions/README.md never mentions {id}");
    }
    assert!(guide.contains("/openapi/gpt-actions.json"));
    let starters = std::fs::read_to_string(root.join("conversation-starters.md")).unwrap();
    assert_eq!(
        starters
            .lines()
            .filter(|l| l.starts_with(char::is_numeric))
            .count(),
        4
    );
}

/// What the server enforces on request bodies and problems, the documents say.
#[test]
fn the_documents_state_the_rules_the_server_enforces() {
    let documents = Documents::committed().unwrap();
    for document in [&documents.full, &documents.gpt] {
        let schemas = &document["components"]["schemas"];
        // Only validation problems carry `errors`.
        let required = schemas["Problem"]["required"].as_array().unwrap();
        assert!(!required.contains(&json!("errors")));
        // Unknown fields are refused; an update must change something.
        assert_eq!(schemas["NewTask"]["additionalProperties"], json!(false));
        assert_eq!(schemas["TaskChanges"]["additionalProperties"], json!(false));
        assert_eq!(schemas["TaskChanges"]["minProperties"], json!(1));
        // Optional fields of a new task may be null.
        for field in ["notes", "due_at", "priority", "tags"] {
            let text = schemas["NewTask"]["properties"][field].to_string();
            assert!(text.contains("\"null\""), "{field}: {text}");
        }
        // Titles are one line; time zones are the names the server knows.
        assert!(
            schemas["NewTask"]["properties"]["title"]
                .to_string()
                .contains("pattern")
        );
    }
    let agenda = &documents.full["paths"]["/v1/agenda"]["get"]["parameters"][0]["schema"];
    let zones = agenda["enum"].as_array().unwrap();
    assert!(zones.contains(&json!("Europe/Paris")) && zones.len() > 400);
}
