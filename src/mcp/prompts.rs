//! Prompts: the conversations people start with Errand most, offered to
//! clients that show prompts as commands (Claude's slash commands, VS Code).
//! Each is a user message that points the model at the right tools; they
//! hold no data and act on nothing themselves.

use serde_json::{Value, json};

struct Prompt {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    /// (name, description, required)
    arguments: &'static [(&'static str, &'static str, bool)],
    text: fn(&Value) -> Result<String, String>,
}

const PROMPTS: [Prompt; 3] = [
    Prompt {
        name: "plan_my_day",
        title: "Plan my day",
        description: "What is overdue and due today, in a sensible order.",
        arguments: &[(
            "tz",
            "Your IANA time zone, e.g. Europe/Paris (default: ask the user).",
            false,
        )],
        text: |args| {
            let zone = args["tz"].as_str().map_or_else(
                || "my time zone (ask me if you do not know it)".to_owned(),
                str::to_owned,
            );
            Ok(format!(
                "Plan my day. Call getAgenda with tz set to {zone}, then tell me what is overdue \
                 and what is due today, in the order I should do it (overdue and high priority \
                 first), and offer to set reminders for the ones with a time."
            ))
        },
    },
    Prompt {
        name: "capture_tasks",
        title: "Capture tasks from a note",
        description: "Turn a note or a list into tasks, one per action.",
        arguments: &[("note", "The text to turn into tasks.", true)],
        text: |args| {
            let Some(note) = args["note"].as_str().filter(|n| !n.trim().is_empty()) else {
                return Err("`note` is required: the text to turn into tasks.".to_owned());
            };
            Ok(format!(
                "Turn this note into Errand tasks: one createTask call per action, with a short \
                 title, a due time when the note gives one (RFC 3339 with my offset) and the \
                 rest in notes. Then list what you created.\n\n{note}"
            ))
        },
    },
    Prompt {
        name: "weekly_review",
        title: "Weekly review",
        description: "What got done this week and what is still open.",
        arguments: &[],
        text: |_| {
            Ok(
                "Review my week. Call listTasks with status=done and sort=created for what I \
                finished, and getAgenda for what is open or overdue. Summarise both and ask \
                which open tasks to move, drop or split."
                    .to_owned(),
            )
        },
    },
];

/// `prompts/list`.
pub fn listing() -> Value {
    let prompts: Vec<Value> = PROMPTS
        .iter()
        .map(|prompt| {
            json!({
                "name": prompt.name,
                "title": prompt.title,
                "description": prompt.description,
                "arguments": prompt.arguments.iter().map(|(name, description, required)| json!({
                    "name": name, "description": description, "required": required,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "prompts": prompts })
}

/// `prompts/get`: the prompt's message, or what is wrong with the request.
pub fn get(name: &str, arguments: &Value) -> Result<Value, String> {
    let Some(prompt) = PROMPTS.iter().find(|p| p.name == name) else {
        let known: Vec<&str> = PROMPTS.iter().map(|p| p.name).collect();
        return Err(format!(
            "Unknown prompt: `{name}`. The prompts are {}.",
            known.join(", ")
        ));
    };
    let text = (prompt.text)(arguments)?;
    Ok(json!({
        "description": prompt.description,
        "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_listed_and_fill_in_their_arguments() {
        assert_eq!(listing()["prompts"].as_array().unwrap().len(), 3);
        let day = get("plan_my_day", &json!({"tz": "Asia/Tokyo"})).unwrap();
        assert!(
            day["messages"][0]["content"]["text"]
                .as_str()
                .unwrap()
                .contains("Asia/Tokyo")
        );
        assert!(
            get("capture_tasks", &json!({}))
                .unwrap_err()
                .contains("`note` is required")
        );
        assert!(get("nope", &json!({})).unwrap_err().contains("plan_my_day"));
    }
}
