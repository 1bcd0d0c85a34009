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
    /// reversible edits are `false`; anything that destroys data is `true`
    /// (it is also the tool's `destructiveHint`).
    pub consequential: bool,
    /// It changes nothing (`readOnlyHint`).
    pub read_only: bool,
    /// Calling it again with the same arguments leaves the same state
    /// (`idempotentHint`): decided per operation, not read off the method.
    pub idempotent: bool,
    pub audience: Audience,
    /// What it does, in a sentence, for the hint justifications a plugin
    /// review reads.
    pub effect: &'static str,
}

/// How an operation behaves: read-only, idempotent, consequential.
#[derive(Debug, Clone, Copy)]
struct Hints(bool, bool, bool);

const READ: Hints = Hints(true, true, false);
/// A change that repeating does not repeat (setting a value, a state).
const SET: Hints = Hints(false, true, false);
/// A change that repeating does again (creating something).
const ADD: Hints = Hints(false, false, false);
/// Destroys data; repeating finds nothing left to destroy.
const DESTROY: Hints = Hints(false, true, true);

const fn op(
    operation_id: &'static str,
    hints: Hints,
    audience: Audience,
    effect: &'static str,
) -> OperationPolicy {
    OperationPolicy {
        operation_id,
        consequential: hints.2,
        read_only: hints.0,
        idempotent: hints.1,
        audience,
        effect,
    }
}

pub const OPERATIONS: &[OperationPolicy] = &[
    op(
        "createTask",
        ADD,
        Audience::Gpt,
        "Adds one task to the user's list; each call adds another.",
    ),
    op(
        "listTasks",
        READ,
        Audience::Gpt,
        "Returns a page of the user's tasks.",
    ),
    op(
        "getTask",
        READ,
        Audience::Gpt,
        "Returns one of the user's tasks.",
    ),
    op(
        "updateTask",
        SET,
        Audience::Gpt,
        "Sets the given fields of one of the user's tasks; the same fields set again change nothing.",
    ),
    op(
        "completeTask",
        SET,
        Audience::Gpt,
        "Marks one of the user's tasks done (again: no change); reopenTask undoes it.",
    ),
    op(
        "reopenTask",
        SET,
        Audience::Gpt,
        "Marks one of the user's done tasks open (again: no change).",
    ),
    op(
        "deleteTask",
        DESTROY,
        Audience::Gpt,
        "Deletes one of the user's tasks and its reminders for good.",
    ),
    op(
        "getAgenda",
        READ,
        Audience::Gpt,
        "Returns the user's overdue, today's and coming tasks and reminders.",
    ),
    op(
        "createReminder",
        ADD,
        Audience::Gpt,
        "Sets a reminder on one of the user's tasks; each call sets another.",
    ),
    op(
        "listReminders",
        READ,
        Audience::Gpt,
        "Returns the user's reminders.",
    ),
    op(
        "cancelReminder",
        SET,
        Audience::Gpt,
        "Cancels one pending reminder of the user (again: no change); the task stays.",
    ),
    op(
        "getMe",
        READ,
        Audience::Gpt,
        "Returns which account the token belongs to.",
    ),
    op(
        "createWebhook",
        ADD,
        Audience::FullOnly,
        "Subscribes a URL to the user's events; each call adds a subscription.",
    ),
    op(
        "listWebhooks",
        READ,
        Audience::FullOnly,
        "Returns the user's webhook subscriptions.",
    ),
    op(
        "deleteWebhook",
        DESTROY,
        Audience::FullOnly,
        "Deletes a webhook subscription and its delivery history.",
    ),
    op(
        "listDeliveries",
        READ,
        Audience::FullOnly,
        "Returns a subscription's recent deliveries.",
    ),
    op(
        "redeliver",
        SET,
        Audience::FullOnly,
        "Queues a delivery for another attempt (again: the same one attempt).",
    ),
    op(
        "getServiceIndex",
        READ,
        Audience::FullOnly,
        "Returns where the documents are.",
    ),
    op(
        "getHealth",
        READ,
        Audience::FullOnly,
        "Says the process is up.",
    ),
    op(
        "getReadiness",
        READ,
        Audience::FullOnly,
        "Says whether the process can serve.",
    ),
];

/// The justifications of a tool's hints, as a plugin review asks for them:
/// one sentence each, about what the tool actually does.
pub fn justifications(policy: &OperationPolicy) -> [(&'static str, String); 4] {
    let effect = policy.effect;
    [
        (
            "readOnlyHint",
            if policy.read_only {
                format!("{effect} It changes nothing.")
            } else {
                format!("{effect} It changes the user's Errand data.")
            },
        ),
        (
            "destructiveHint",
            if policy.consequential {
                "It deletes data that cannot be brought back, so ChatGPT asks the user first."
                    .to_owned()
            } else if policy.read_only {
                "It only reads.".to_owned()
            } else {
                "It deletes and overwrites nothing the user cannot set again.".to_owned()
            },
        ),
        (
            "openWorldHint",
            "It acts only on the signed-in user's own Errand account; it reaches no other site, \
             person or account."
                .to_owned(),
        ),
        (
            "idempotentHint",
            if policy.idempotent {
                "Calling it again with the same arguments leaves the same state.".to_owned()
            } else {
                "Calling it again does it again (another item); Errand's Idempotency-Key \
                 guards retries over HTTP."
                    .to_owned()
            },
        ),
    ]
}

pub fn policy(operation_id: &str) -> Option<&'static OperationPolicy> {
    OPERATIONS.iter().find(|p| p.operation_id == operation_id)
}
