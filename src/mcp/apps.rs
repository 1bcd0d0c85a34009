//! Tasks shown inline: MCP Apps (extension `io.modelcontextprotocol/ui`,
//! 2026-01-26), which ChatGPT, Claude and VS Code render.
//!
//! Three views, each a self-contained HTML page (`templates/mcp/view.html`:
//! its script speaks the `ui/*` bridge, or ChatGPT's older `window.openai`)
//! served as a `ui://` resource: the task list (`listTasks`, `getAgenda`),
//! one task (`createTask`, `getTask`, `updateTask`) and reminders
//! (`listReminders`). A view loads nothing from anywhere, so its declared
//! CSP allows nothing; what it does it does by calling tools through the
//! host, so scope checks and events are the API's. Each is also offered
//! under ChatGPT's older keys (`text/html+skybridge`, `openai/*`) for
//! clients that still read only those.

use serde_json::{Map, Value, json};

/// The MIME type of an MCP Apps view.
pub const MIME: &str = "text/html;profile=mcp-app";
/// The MIME type ChatGPT's Apps SDK used before MCP Apps.
const LEGACY_MIME: &str = "text/html+skybridge";
/// The extension's identifier, as servers and clients declare it.
pub const EXTENSION: &str = "io.modelcontextprotocol/ui";

const PAGE: &str = include_str!("../../templates/mcp/view.html");

/// One view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The `data-view` the page renders.
    key: &'static str,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    /// The tools whose results it shows.
    tools: &'static [&'static str],
}

pub const VIEWS: [View; 3] = [
    View {
        key: "tasks",
        name: "task-list",
        title: "Task list",
        description: "The user's tasks (or agenda: overdue, today, coming up) with a checkbox to \
                      complete each; a tap opens the task.",
        tools: &["listTasks", "getAgenda"],
    },
    View {
        key: "task",
        name: "task",
        title: "Task",
        description: "One task with its notes, due time, priority, tags and reminders, and a \
                      button to complete or reopen it.",
        tools: &["createTask", "getTask", "updateTask"],
    },
    View {
        key: "reminders",
        name: "reminders",
        title: "Reminders",
        description: "The user's reminders: when each fires and for which task.",
        tools: &["listReminders"],
    },
];

impl View {
    pub fn uri(self) -> String {
        format!("ui://errand/{}.html", self.key)
    }

    /// The same page under the older ChatGPT MIME type.
    pub fn legacy_uri(self) -> String {
        format!("ui://errand/legacy/{}.html", self.key)
    }

    pub fn html(self) -> String {
        PAGE.replace("__VIEW__", self.key)
    }
}

/// The view that shows `tool`'s result, if any.
pub fn view_for(tool: &str) -> Option<View> {
    VIEWS.into_iter().find(|view| view.tools.contains(&tool))
}

/// How a view is to be shown: the CSP it needs (nothing: it loads nothing
/// and connects nowhere; the host sandboxes it and carries its tool calls),
/// its border, and the same in ChatGPT's older keys. `domain`, when set,
/// is the dedicated origin a host serves the view from.
fn ui_meta(view: View, domain: Option<&str>) -> Value {
    let mut ui = json!({
        "csp": { "connectDomains": [], "resourceDomains": [], "frameDomains": [], "baseUriDomains": [] },
        "prefersBorder": true,
    });
    if let Some(domain) = domain {
        ui["domain"] = json!(domain);
    }
    let mut meta = json!({
        "ui": ui,
        "openai/widgetCSP": { "connect_domains": [], "resource_domains": [] },
        "openai/widgetPrefersBorder": true,
        "openai/widgetDescription": view.description,
    });
    if let Some(domain) = domain {
        meta["openai/widgetDomain"] = json!(domain);
    }
    meta
}

/// Every view, as `resources/list` lists it: the MCP Apps resource and its
/// older ChatGPT twin.
pub fn listing(domain: Option<&str>) -> Vec<Value> {
    VIEWS
        .into_iter()
        .flat_map(|view| {
            [
                json!({
                    "uri": view.uri(),
                    "name": view.name,
                    "title": view.title,
                    "description": view.description,
                    "mimeType": MIME,
                    "_meta": ui_meta(view, domain),
                }),
                json!({
                    "uri": view.legacy_uri(),
                    "name": format!("{}-skybridge", view.name),
                    "title": format!("{} (ChatGPT Apps SDK)", view.title),
                    "description": view.description,
                    "mimeType": LEGACY_MIME,
                    "_meta": ui_meta(view, domain),
                }),
            ]
        })
        .collect()
}

/// What `resources/read` returns for `uri`, if it is a view.
pub fn read(uri: &str, domain: Option<&str>) -> Option<Value> {
    let (view, mime) = VIEWS.into_iter().find_map(|view| {
        if view.uri() == uri {
            Some((view, MIME))
        } else if view.legacy_uri() == uri {
            Some((view, LEGACY_MIME))
        } else {
            None
        }
    })?;
    Some(json!({
        "contents": [{
            "uri": uri,
            "mimeType": mime,
            "text": view.html(),
            "_meta": ui_meta(view, domain),
        }]
    }))
}

/// What a tool's listing carries about its view: the standard
/// `_meta.ui.resourceUri` (and its earlier flat spelling), ChatGPT's
/// `openai/outputTemplate`, and whether a view may call it (every tool may:
/// the views complete, reopen and open tasks through them).
pub fn tool_meta(tool: &str, meta: &mut Map<String, Value>) {
    meta.insert("openai/widgetAccessible".into(), json!(true));
    let Some(view) = view_for(tool) else {
        return;
    };
    meta.insert(
        "ui".into(),
        json!({ "resourceUri": view.uri(), "visibility": ["model", "app"] }),
    );
    meta.insert("ui/resourceUri".into(), json!(view.uri()));
    meta.insert("openai/outputTemplate".into(), json!(view.legacy_uri()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_is_a_complete_page_that_loads_nothing() {
        for view in VIEWS {
            let html = view.html();
            assert!(html.starts_with("<!doctype html>"));
            assert!(html.contains(&format!("data-view=\"{}\"", view.key)));
            for outside in ["http://", "https://", "src=", "@import", "url("] {
                assert!(!html.contains(outside), "{} loads {outside}", view.key);
            }
        }
    }

    #[test]
    fn tools_point_at_their_views_and_resources_read_back() {
        let mut meta = Map::new();
        tool_meta("getAgenda", &mut meta);
        assert_eq!(meta["ui"]["resourceUri"], "ui://errand/tasks.html");
        let read = read("ui://errand/tasks.html", None).unwrap();
        assert_eq!(read["contents"][0]["mimeType"], MIME);
        let legacy = read_legacy();
        assert_eq!(legacy["contents"][0]["mimeType"], LEGACY_MIME);
        assert!(super::read("ui://errand/nothing.html", None).is_none());
        assert_eq!(listing(None).len(), 6);
    }

    fn read_legacy() -> Value {
        read(
            "ui://errand/legacy/task.html",
            Some("https://errand.example.com"),
        )
        .unwrap()
    }

    #[test]
    fn a_domain_is_declared_only_when_configured() {
        assert!(
            read("ui://errand/task.html", None).unwrap()["contents"][0]["_meta"]["ui"]
                .get("domain")
                .is_none()
        );
        assert_eq!(
            read_legacy()["contents"][0]["_meta"]["openai/widgetDomain"],
            "https://errand.example.com"
        );
    }
}
