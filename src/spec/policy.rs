//! The one table that says, per operation, whether ChatGPT must ask the user
//! before calling it (`x-openai-isConsequential`) and which documents carry it.
//! Building the documents fails if an operation is missing here, so a new
//! operation cannot ship without a decision.

/// Which documents an operation appears in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The GPT Actions document and the full document.
    Gpt,
    /// Only the full document (integrators and operators).
    FullOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationPolicy {
    pub operation_id: &'static str,
    /// `true` makes ChatGPT always ask the user to confirm the call. Reads and
    /// reversible edits are `false`; anything that destroys data is `true`.
    pub consequential: bool,
    pub audience: Audience,
}

const fn op(
    operation_id: &'static str,
    consequential: bool,
    audience: Audience,
) -> OperationPolicy {
    OperationPolicy {
        operation_id,
        consequential,
        audience,
    }
}

pub const OPERATIONS: &[OperationPolicy] = &[
    op("createTask", false, Audience::Gpt),
    op("listTasks", false, Audience::Gpt),
    op("getTask", false, Audience::Gpt),
    op("updateTask", false, Audience::Gpt),
    op("completeTask", false, Audience::Gpt),
    op("reopenTask", false, Audience::Gpt),
    op("deleteTask", true, Audience::Gpt),
    op("getAgenda", false, Audience::Gpt),
    op("createReminder", false, Audience::Gpt),
    op("listReminders", false, Audience::Gpt),
    op("cancelReminder", false, Audience::Gpt),
    op("getMe", false, Audience::Gpt),
    op("createWebhook", false, Audience::FullOnly),
    op("listWebhooks", false, Audience::FullOnly),
    op("deleteWebhook", true, Audience::FullOnly),
    op("listDeliveries", false, Audience::FullOnly),
    op("redeliver", false, Audience::FullOnly),
    op("getServiceIndex", false, Audience::FullOnly),
    op("getHealth", false, Audience::FullOnly),
    op("getReadiness", false, Audience::FullOnly),
];

pub fn policy(operation_id: &str) -> Option<&'static OperationPolicy> {
    OPERATIONS.iter().find(|p| p.operation_id == operation_id)
}
