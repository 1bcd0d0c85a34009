//! The protected resources a token can be for (RFC 8707 audiences).
//!
//! Errand serves two resources: its HTTP API (the GPT Actions and
//! integrators' door) and its MCP endpoint. A token says which one in its
//! `aud` claim, and each door accepts only its own tokens, so a token a user
//! gave an MCP client cannot be replayed against the API by that client, and
//! the other way round. Tokens requested without a `resource` are for the API,
//! as they always were.

use super::Scope;
use crate::config::PublicUrl;

/// Where the MCP endpoint is served.
pub const MCP_PATH: &str = "/mcp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The HTTP API under `/v1`; identified by the public URL itself.
    Api,
    /// The MCP endpoint; identified by `<public URL>/mcp`.
    Mcp,
}

impl Resource {
    pub const ALL: [Self; 2] = [Self::Api, Self::Mcp];

    /// The resource's identifier, which is also its tokens' audience.
    pub fn identifier(self, public_url: &PublicUrl) -> String {
        match self {
            Self::Api => public_url.as_str().to_owned(),
            Self::Mcp => public_url.join(MCP_PATH),
        }
    }

    /// The resource a client named, if it is one of ours. A trailing slash
    /// is tolerated (`https://host/` names the API).
    pub fn from_identifier(raw: &str, public_url: &PublicUrl) -> Option<Self> {
        let raw = raw.trim();
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        Self::ALL
            .into_iter()
            .find(|resource| resource.identifier(public_url) == trimmed)
    }

    /// The resource an authorization or token request names (RFC 8707), or
    /// the `invalid_target` description saying which ones exist.
    pub fn requested(raw: &str, public_url: &PublicUrl) -> Result<Self, String> {
        Self::from_identifier(raw, public_url).ok_or_else(|| {
            format!(
                "resource must be {} (the HTTP API) or {} (the MCP endpoint)",
                Self::Api.identifier(public_url),
                Self::Mcp.identifier(public_url)
            )
        })
    }

    /// Where its RFC 9728 protected-resource metadata is served: the
    /// well-known prefix followed by the resource's path.
    pub fn metadata_path(self) -> &'static str {
        match self {
            Self::Api => "/.well-known/oauth-protected-resource",
            Self::Mcp => "/.well-known/oauth-protected-resource/mcp",
        }
    }

    /// The scopes a token for it can carry.
    pub fn scopes(self) -> &'static [Scope] {
        match self {
            Self::Api => &Scope::ALL,
            Self::Mcp => &Scope::USER,
        }
    }

    /// How a grant or code row records it (null for the API).
    pub fn stored(self) -> Option<&'static str> {
        match self {
            Self::Api => None,
            Self::Mcp => Some("mcp"),
        }
    }

    /// Reads a stored value back; anything unknown is the API, the resource
    /// with the narrower door (unknown values are never written).
    pub fn from_stored(stored: Option<&str>) -> Self {
        match stored {
            Some("mcp") => Self::Mcp,
            _ => Self::Api,
        }
    }

    /// How the resource is named in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Api => "the HTTP API",
            Self::Mcp => "the MCP endpoint",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_round_trip_and_tolerate_a_trailing_slash() {
        let url = PublicUrl::parse("https://errand.example.com").unwrap();
        assert_eq!(
            Resource::Mcp.identifier(&url),
            "https://errand.example.com/mcp"
        );
        assert_eq!(
            Resource::from_identifier("https://errand.example.com/", &url),
            Some(Resource::Api)
        );
        assert_eq!(
            Resource::from_identifier("https://errand.example.com/mcp", &url),
            Some(Resource::Mcp)
        );
        assert_eq!(
            Resource::from_identifier("https://evil.example.com/mcp", &url),
            None
        );
        assert_eq!(
            Resource::from_identifier("https://errand.example.com/v1", &url),
            None
        );
        for resource in Resource::ALL {
            assert_eq!(Resource::from_stored(resource.stored()), resource);
        }
    }
}
