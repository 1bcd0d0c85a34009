//! Which methods each path answers, for the `Allow` header every 405 must
//! carry (RFC 9110 §15.5.6). Built from what the routes are registered from:
//! the OpenAPI document's operations and the list of other endpoints, so it
//! cannot disagree with the router.

use poem::{endpoint::BoxEndpoint, http::Method};
use serde_json::Value;

use crate::auth::Scope;

/// One route outside the OpenAPI operations: its path (poem syntax,
/// `:param` for a segment) and a handler per method.
pub type Handlers = Vec<(Method, BoxEndpoint<'static>)>;

/// The order methods are listed in.
const ORDER: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter,
}

fn segments(template: &str) -> Vec<Segment> {
    template
        .split('/')
        .map(|part| {
            if part.starts_with(':') || (part.starts_with('{') && part.ends_with('}')) {
                Segment::Parameter
            } else {
                Segment::Literal(part.to_owned())
            }
        })
        .collect()
}

#[derive(Debug, Default)]
pub struct MethodTable {
    routes: Vec<(Vec<Segment>, Vec<Method>)>,
    /// Each route's template as first written, for metrics labels.
    templates: Vec<String>,
    /// The operationId of each documented (route, method).
    operation_ids: Vec<(usize, Method, String)>,
    /// The scopes each documented (route, method) requires (what its
    /// `Authorized` extractor enforces; a test keeps the two equal).
    scopes: Vec<(usize, Method, Vec<Scope>)>,
}

impl MethodTable {
    /// Records that `template` answers `methods`; the route's index.
    pub fn add(&mut self, template: &str, methods: impl IntoIterator<Item = Method>) -> usize {
        let segments = segments(template);
        let index = match self.routes.iter().position(|(s, _)| *s == segments) {
            Some(index) => index,
            None => {
                self.routes.push((segments, Vec::new()));
                self.templates.push(template.to_owned());
                self.routes.len() - 1
            }
        };
        let known = &mut self.routes[index].1;
        for method in methods {
            if !known.contains(&method) {
                known.push(method);
            }
        }
        index
    }

    /// Records every operation of an OpenAPI document.
    pub fn add_document(&mut self, document: &Value) {
        for (path, method, operation) in crate::spec::finish::operations(document) {
            if let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) {
                let index = self.add(&path, [method.clone()]);
                if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
                    self.operation_ids
                        .push((index, method.clone(), id.to_owned()));
                }
                let required: Vec<Scope> = operation
                    .get("security")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                    .flat_map(|schemes| schemes.values())
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter_map(Scope::parse)
                    .collect();
                self.scopes.push((index, method, required));
            }
        }
    }

    /// The `Allow` value for a request to `path`: its methods, with HEAD
    /// wherever GET is (poem answers HEAD with the GET handler).
    pub fn allow(&self, path: &str) -> Option<String> {
        let (_, methods) = &self.routes[self.matching(path)?];
        let allowed: Vec<&str> = ORDER
            .iter()
            .filter(|method| {
                methods.contains(method)
                    || (**method == Method::HEAD && methods.contains(&Method::GET))
            })
            .map(Method::as_str)
            .collect();
        Some(allowed.join(", "))
    }

    /// What a request is counted as in metrics: its operationId, else the
    /// route's template (`/oauth/token`), else `unmatched`, so that labels
    /// stay few whatever paths are requested.
    pub fn label(&self, method: &Method, path: &str) -> &str {
        let Some(index) = self.matching(path) else {
            return "unmatched";
        };
        let method = if *method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.operation_ids
            .iter()
            .find(|(route, m, _)| *route == index && m == method)
            .map_or(self.templates[index].as_str(), |(_, _, id)| id.as_str())
    }

    /// The scopes a request to `path` with `method` needs, as documented;
    /// `None` for a route outside the documented operations.
    pub fn required_scopes(&self, method: &Method, path: &str) -> Option<&[Scope]> {
        let index = self.matching(path)?;
        self.scopes
            .iter()
            .find(|(route, m, _)| *route == index && m == method)
            .map(|(_, _, scopes)| scopes.as_slice())
    }

    /// The index of the route `path` matches.
    fn matching(&self, path: &str) -> Option<usize> {
        // Split as often as there are candidates rather than collected:
        // this runs for every request and allocates nothing.
        let parts = path.split('/').count();
        // The most specific template, as the router picks it: the one with
        // the most literal segments among those that match.
        let (index, _) = self
            .routes
            .iter()
            .enumerate()
            .filter(|(_, (template, _))| {
                template.len() == parts
                    && template
                        .iter()
                        .zip(path.split('/'))
                        .all(|(segment, part)| match segment {
                            Segment::Literal(literal) => literal == part,
                            Segment::Parameter => !part.is_empty(),
                        })
            })
            .max_by_key(|(_, (template, _))| {
                template
                    .iter()
                    .filter(|segment| matches!(segment, Segment::Literal(_)))
                    .count()
            })?;
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_templates_and_list_their_methods() {
        let mut table = MethodTable::default();
        table.add("/v1/tasks", [Method::POST, Method::GET]);
        table.add(
            "/v1/tasks/{number}",
            [Method::GET, Method::PATCH, Method::DELETE],
        );
        table.add("/problems/:slug", [Method::GET]);
        table.add("/v1/{collection}/{number}/complete", [Method::DELETE]);
        table.add("/v1/tasks/{number}/complete", [Method::POST]);
        table.add("/v1/tasks/{number}/{verb}", [Method::PUT]);
        assert_eq!(table.allow("/v1/tasks").unwrap(), "GET, HEAD, POST");
        assert_eq!(
            table.allow("/v1/tasks/12").unwrap(),
            "GET, HEAD, PATCH, DELETE"
        );
        assert_eq!(table.allow("/problems/not-found").unwrap(), "GET, HEAD");
        // The most literal template wins, whichever was added first.
        assert_eq!(table.allow("/v1/tasks/3/complete").unwrap(), "POST");
        assert_eq!(table.allow("/v1/tasks/3/reopen").unwrap(), "PUT");
        assert_eq!(table.allow("/v1/tasks/12/complete/more"), None);
        assert_eq!(table.allow("/v1/tasks/"), None);
        // Metrics labels: the route's template without a document.
        assert_eq!(
            table.label(&Method::POST, "/v1/tasks/3/complete"),
            "/v1/tasks/{number}/complete"
        );
        assert_eq!(table.label(&Method::GET, "/problems/x"), "/problems/:slug");
        assert_eq!(table.label(&Method::GET, "/nowhere"), "unmatched");
    }
}
