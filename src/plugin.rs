//! The plugin bundle a builder submits to OpenAI (`errand plugin bundle`):
//! a ZIP with the Agent Plugins manifest (`plugin.json`, OpenAI's listing
//! and review settings under `extensions["com.openai"]`), the Skill made
//! from the GPT instructions (`skills/errand/SKILL.md`: one source for
//! both), the MCP server entry (`mcp.json`), the icon, and the review
//! material: test prompts (five that should use Errand, three that should
//! not) and a justification of every tool's hints, generated from
//! `spec::policy`. No `ai-plugin.json`: that was the retired 2023 format.

use std::io::Write;

use serde_json::{Value, json};

use crate::{config::PublicUrl, spec::policy, tools::Catalog};

const INSTRUCTIONS: &str = include_str!("../actions/instructions.md");
const TEST_CASES: &str = include_str!("../actions/plugin/test-cases.json");
const ICON: &str = include_str!("../actions/plugin/icon.svg");

const SHORT_DESCRIPTION: &str = "Tasks and reminders";
const LONG_DESCRIPTION: &str = "Errand keeps your to-do list: add tasks as you talk, see \
what is overdue and due today, tick tasks off, and set reminders that reach you in the chat \
when they come due. Your tasks stay yours: Errand reaches only the account you sign in with.";

/// Where the listing's links go; all four are required for a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub developer_name: String,
    pub website_url: String,
    pub support_url: String,
    pub privacy_policy_url: String,
    pub terms_of_service_url: String,
    /// A screen recording of the plugin in use, which a first review asks
    /// for (added in the portal if not here).
    pub demo_recording_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0} must be an https URL (the plugin review takes no other)")]
    NotHttps(&'static str),
    #[error("{0} is required for the plugin listing")]
    Missing(&'static str),
    #[error("could not write the archive")]
    Zip(#[from] zip::result::ZipError),
    #[error("could not write the archive")]
    Io(#[from] std::io::Error),
    #[error("the bundled test cases are not valid JSON")]
    TestCases(#[from] serde_json::Error),
}

impl Listing {
    /// Checks the links (https, present).
    pub fn check(&self) -> Result<(), PluginError> {
        if self.developer_name.trim().is_empty() {
            return Err(PluginError::Missing("ERRAND_PLUGIN_DEVELOPER_NAME"));
        }
        for (setting, value) in [
            ("ERRAND_PLUGIN_WEBSITE_URL", &self.website_url),
            ("ERRAND_PLUGIN_SUPPORT_URL", &self.support_url),
            ("ERRAND_PLUGIN_PRIVACY_URL", &self.privacy_policy_url),
            ("ERRAND_PLUGIN_TERMS_URL", &self.terms_of_service_url),
        ] {
            if value.trim().is_empty() {
                return Err(PluginError::Missing(setting));
            }
            if !url::Url::parse(value).is_ok_and(|url| url.scheme() == "https") {
                return Err(PluginError::NotHttps(setting));
            }
        }
        Ok(())
    }
}

/// The instructions as a Skill: the same text the GPT gets, with the
/// front matter a skill needs.
pub fn skill() -> String {
    format!(
        "---\nname: errand\ndescription: Keep the user's tasks and reminders in Errand: add, \
         list, update, complete and delete tasks, see the agenda, set and cancel reminders. Use \
         it whenever the user talks about things to do, deadlines or reminders.\n---\n\n{}",
        INSTRUCTIONS.trim_end()
    )
}

/// Every tool's hints with a sentence for each, from `spec::policy`.
pub fn tool_hints(catalog: &Catalog) -> Value {
    let tools: Vec<Value> = catalog
        .tools
        .iter()
        .filter_map(|tool| {
            let policy = policy::policy(&tool.name)?;
            let justifications: serde_json::Map<String, Value> = policy::justifications(policy)
                .into_iter()
                .map(|(hint, why)| (hint.to_owned(), json!(why)))
                .collect();
            Some(json!({
                "name": tool.name,
                "annotations": tool.annotations(),
                "justifications": justifications,
            }))
        })
        .collect();
    json!({ "tools": tools })
}

/// `plugin.json`; the MCP server it connects to is in `mcp.json`.
pub fn manifest(listing: &Listing) -> Result<Value, PluginError> {
    let test_cases: Value = serde_json::from_str(TEST_CASES)?;
    let default_prompts: Vec<Value> = test_cases["positive"]
        .as_array()
        .into_iter()
        .flatten()
        .take(3)
        .filter_map(|case| case["prompt"].as_str())
        .map(|prompt| json!(prompt))
        .collect();
    let mut review = json!({ "test_cases": test_cases });
    if let Some(demo) = &listing.demo_recording_url {
        review["demo_recording_url"] = json!(demo);
    }
    Ok(json!({
        "$schema": "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json",
        "name": "errand",
        "version": env!("CARGO_PKG_VERSION"),
        "description": LONG_DESCRIPTION,
        "author": { "name": listing.developer_name, "url": listing.website_url },
        "homepage": listing.website_url,
        "license": "Apache-2.0",
        "keywords": ["tasks", "reminders", "to-do"],
        "extensions": {
            "com.openai": {
                "interface": {
                    "displayName": crate::site::TITLE,
                    "shortDescription": SHORT_DESCRIPTION,
                    "longDescription": LONG_DESCRIPTION,
                    "developerName": listing.developer_name,
                    "category": "Productivity",
                    "capabilities": [
                        "Adds, updates, completes and deletes your tasks",
                        "Shows your agenda: overdue, today and coming up",
                        "Sets reminders that arrive in the chat when due",
                    ],
                    "websiteURL": listing.website_url,
                    "supportURL": listing.support_url,
                    "privacyPolicyURL": listing.privacy_policy_url,
                    "termsOfServiceURL": listing.terms_of_service_url,
                    "defaultPrompt": default_prompts,
                    "brandColor": "#1F6FEB",
                    "brandColorDark": "#4493F8",
                    "composerIcon": "./assets/icon.svg",
                    "logo": "./assets/icon.svg",
                },
                "review": review,
            }
        },
    }))
}

pub fn mcp_servers(public_url: &PublicUrl) -> Value {
    json!({
        "$schema": "https://agent-plugins.org/schemas/1.0.0/mcp.schema.json",
        "mcpServers": {
            "errand": {
                "type": "streamable-http",
                "url": public_url.join(crate::auth::resource::MCP_PATH),
            }
        }
    })
}

fn review_readme(catalog: &Catalog) -> String {
    let mut text = String::from(
        "# Review notes\n\nWhat a reviewer asks about each tool's hints, from Errand's policy table \
         (`src/spec/policy.rs`). `tool-hints.json` has the same as data.\n\n",
    );
    for tool in &catalog.tools {
        let Some(policy) = policy::policy(&tool.name) else {
            continue;
        };
        text.push_str(&format!("## {}\n\n", tool.name));
        for (hint, why) in policy::justifications(policy) {
            let value = tool.annotations()[hint].as_bool().unwrap_or(false);
            text.push_str(&format!("* `{hint}: {value}`: {why}\n"));
        }
        text.push('\n');
    }
    text
}

/// The archive, as bytes.
pub fn bundle(
    public_url: &PublicUrl,
    listing: &Listing,
    catalog: &Catalog,
) -> Result<Vec<u8>, PluginError> {
    listing.check()?;
    let files: Vec<(&str, String)> = vec![
        (
            "plugin.json",
            serde_json::to_string_pretty(&manifest(listing)?)?,
        ),
        (
            "mcp.json",
            serde_json::to_string_pretty(&mcp_servers(public_url))?,
        ),
        ("skills/errand/SKILL.md", skill()),
        ("assets/icon.svg", ICON.to_owned()),
        (
            "review/tool-hints.json",
            serde_json::to_string_pretty(&tool_hints(catalog))?,
        ),
        ("review/README.md", review_readme(catalog)),
    ];
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        archive.start_file(name, options)?;
        archive.write_all(content.as_bytes())?;
    }
    Ok(archive.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skill_is_the_gpt_instructions() {
        let skill = skill();
        assert!(skill.starts_with("---\nname: errand\n"));
        assert!(skill.contains(INSTRUCTIONS.lines().next().unwrap()));
    }

    #[test]
    fn listings_need_four_https_links() {
        let listing = Listing {
            developer_name: "Example Ltd".into(),
            website_url: "https://example.com".into(),
            support_url: "https://example.com/help".into(),
            privacy_policy_url: "http://example.com/privacy".into(),
            terms_of_service_url: "https://example.com/terms".into(),
            demo_recording_url: None,
        };
        assert!(matches!(
            listing.check(),
            Err(PluginError::NotHttps("ERRAND_PLUGIN_PRIVACY_URL"))
        ));
    }
}
