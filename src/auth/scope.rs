use std::fmt;

use poem_openapi::{OAuthScopes, registry::MetaOAuthScope};

/// A permission an access token can carry. Checked on the server for every
/// operation; the OpenAPI document only describes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    TasksRead,
    TasksWrite,
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::TasksRead, Scope::TasksWrite, Scope::WebhooksManage];
    /// What a person can grant an app acting for them (webhooks are for
    /// integrators' own clients).
    pub const USER: [Scope; 2] = [Scope::TasksRead, Scope::TasksWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TasksRead => "tasks:read",
            Self::TasksWrite => "tasks:write",
            Self::WebhooksManage => "webhooks:manage",
        }
    }

    /// The scope in plain words, as a person approving it would read it.
    pub fn description(self) -> &'static str {
        match self {
            Self::TasksRead => "See your tasks and agenda",
            Self::TasksWrite => "Create, change, complete and delete your tasks",
            Self::WebhooksManage => {
                "Send your task and reminder events to web addresses you choose"
            }
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == raw)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl OAuthScopes for Scope {
    fn meta() -> Vec<MetaOAuthScope> {
        Self::ALL
            .into_iter()
            .map(|scope| MetaOAuthScope {
                name: scope.as_str(),
                description: Some(scope.description()),
            })
            .collect()
    }

    fn name(&self) -> &'static str {
        self.as_str()
    }
}

/// A set of scopes, written on the wire as a space-separated list (RFC 6749 §3.3).
/// One bit per scope: every authenticated request copies its token's set, and
/// a copy of this costs nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeSet(u32);

impl Scope {
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown scope `{unknown}`; known scopes are {known}")]
pub struct UnknownScope {
    pub unknown: String,
    pub known: String,
}

impl ScopeSet {
    /// Parses a scope string, rejecting names Errand does not know.
    pub fn parse(raw: &str) -> Result<Self, UnknownScope> {
        raw.split_whitespace()
            .map(|name| {
                Scope::parse(name).ok_or_else(|| UnknownScope {
                    unknown: name.to_owned(),
                    known: Scope::ALL.map(Scope::as_str).join(", "),
                })
            })
            .collect()
    }

    /// Parses a scope claim from a verified token, ignoring names this version
    /// does not know (a newer release may have issued them).
    pub fn parse_lenient(raw: &str) -> Self {
        raw.split_whitespace().filter_map(Scope::parse).collect()
    }

    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes in the set, in [`Scope::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        Scope::ALL.into_iter().filter(|scope| self.contains(*scope))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_space_separated_scopes() {
        let scopes = ScopeSet::parse("tasks:write  tasks:read").unwrap();
        assert!(scopes.contains(Scope::TasksRead));
        assert_eq!(scopes.to_string(), "tasks:read tasks:write");
    }

    #[test]
    fn rejects_unknown_scopes_naming_the_known_ones() {
        let err = ScopeSet::parse("tasks:read admin").unwrap_err();
        assert_eq!(err.unknown, "admin");
        assert!(err.to_string().contains("tasks:read, tasks:write"));
    }

    #[test]
    fn lenient_parse_drops_unknown_scopes() {
        assert_eq!(
            ScopeSet::parse_lenient("admin tasks:read").to_string(),
            "tasks:read"
        );
    }
}
