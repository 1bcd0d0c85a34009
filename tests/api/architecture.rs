//! ARCHITECTURE.md's dependency rules, checked against the source: every
//! module is on the map, imports only what its row allows and nothing its row
//! forbids, the rows' import graph has no cycle, and each table's entity lives
//! in (and is imported only from) the module that owns it. Each file under
//! `src/` is parsed with `syn` and its paths into the crate collected; the
//! failure message names the file and rule.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// One row of the "Dependency rules" table.
#[derive(Debug)]
struct Rule {
    module: String,
    tables: Vec<String>,
    /// `None` for `any`.
    may_import: Option<Vec<String>>,
    must_not_import: Vec<String>,
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn rules() -> Vec<Rule> {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let table = map
        .split("| module | tables | may import | must not import |")
        .nth(1)
        .expect("ARCHITECTURE.md has the dependency rules table");
    let rules: Vec<Rule> = table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 4, "malformed row: {line}");
            Rule {
                module: backticked(cells[0]).concat(),
                tables: backticked(cells[1]),
                may_import: (cells[2] != "any").then(|| backticked(cells[2])),
                must_not_import: backticked(cells[3]),
            }
        })
        .collect();
    assert!(rules.len() > 10, "the rules table was not found");
    rules
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/` with its module path (`auth::token`; the
/// crate root is `lib`, the binary `main`).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let src = root().join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let module = parts.join("::");
            (module, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// What one source file takes from elsewhere, read by `syn` from its syntax
/// tree (so comments, strings and doc text never count).
#[derive(Debug, Default)]
struct Imports {
    /// Paths into this crate, from the crate root (`tasks::store::create`).
    paths: Vec<Vec<String>>,
    /// The external crates of interest the file names.
    externals: BTreeSet<String>,
    /// Macros it exports at the crate root (`#[macro_export] macro_rules!`).
    exported_macros: Vec<String>,
}

/// A path as written, with the module it was written in (the file's module
/// and any inline `mod x { … }` around it), resolved once every `use` of
/// the file is known.
struct Written {
    segments: Vec<String>,
    within: Vec<String>,
    /// From a `use` item: it may bring a name in for later paths.
    brings_in: Option<String>,
}

struct Reader<'a> {
    module: &'a [String],
    externals: &'a [&'a str],
    inline: Vec<String>,
    written: Vec<Written>,
    exported_macros: Vec<String>,
}

impl Reader<'_> {
    fn within(&self) -> Vec<String> {
        self.module.iter().chain(&self.inline).cloned().collect()
    }

    fn write(&mut self, segments: Vec<String>, brings_in: Option<String>) {
        if !segments.is_empty() {
            let within = self.within();
            self.written.push(Written {
                segments,
                within,
                brings_in,
            });
        }
    }

    /// Every leaf of a use tree, as segments from where the tree starts.
    fn use_tree(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(&path.tree, prefix);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                let ident = name.ident.to_string();
                let mut path = prefix.clone();
                // `use a::{self}` imports `a` itself.
                if ident != "self" {
                    path.push(ident);
                }
                let brought = path.last().cloned();
                self.write(path, brought);
            }
            syn::UseTree::Rename(rename) => {
                let mut path = prefix.clone();
                if rename.ident != "self" {
                    path.push(rename.ident.to_string());
                }
                self.write(path, Some(rename.rename.to_string()));
            }
            syn::UseTree::Glob(_) => self.write(prefix.clone(), None),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(tree, prefix);
                }
            }
        }
    }

    /// Paths inside tokens syn leaves unparsed (macro bodies and calls,
    /// attribute arguments such as `derive(poem_openapi::Object)`):
    /// `$crate::a::b`, `crate::a`, `super::a`, `name::a`.
    fn tokens(&mut self, tokens: proc_macro2::TokenStream) {
        use proc_macro2::TokenTree;
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let colons = |at: usize| {
            matches!((trees.get(at), trees.get(at + 1)),
                (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                    if a.as_char() == ':' && b.as_char() == ':')
        };
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(group) => {
                    self.tokens(group.stream());
                    i += 1;
                }
                TokenTree::Ident(first) => {
                    let follows_path = i >= 2 && colons(i - 2);
                    let mut segments = vec![first.to_string()];
                    let mut at = i + 1;
                    while colons(at) {
                        let Some(TokenTree::Ident(next)) = trees.get(at + 2) else {
                            break;
                        };
                        segments.push(next.to_string());
                        at += 3;
                    }
                    if !follows_path && segments.len() > 1 {
                        self.write(segments, None);
                    }
                    i = at;
                }
                _ => i += 1,
            }
        }
    }

    /// The written paths resolved from the crate root, following `super`,
    /// `self` and the names `use` items brought in.
    fn finish(self) -> Imports {
        let mut imports = Imports {
            exported_macros: self.exported_macros,
            ..Imports::default()
        };
        let resolve = |segments: &[String], within: &[String]| -> Option<Vec<String>> {
            let (first, rest) = segments.split_first()?;
            match first.as_str() {
                "crate" => Some(rest.to_vec()),
                "self" => Some(within.iter().chain(rest).cloned().collect()),
                "super" => {
                    let mut base = within.to_vec();
                    let mut rest = segments;
                    while let Some((step, after)) = rest.split_first()
                        && step == "super"
                    {
                        base.pop()?;
                        rest = after;
                    }
                    Some(base.into_iter().chain(rest.iter().cloned()).collect())
                }
                _ => None,
            }
        };
        let mut brought: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for written in &self.written {
            if let (Some(name), Some(path)) = (
                &written.brings_in,
                resolve(&written.segments, &written.within),
            ) {
                brought.insert(name.clone(), path);
            }
        }
        for written in &self.written {
            let Some(first) = written.segments.first() else {
                continue;
            };
            if self.externals.contains(&first.as_str()) {
                imports.externals.insert(first.clone());
            } else if let Some(path) = resolve(&written.segments, &written.within) {
                if !path.is_empty() {
                    imports.paths.push(path);
                }
            } else if let Some(base) = brought.get(first)
                && written.segments.len() > 1
                && written.brings_in.is_none()
            {
                let rest = written.segments[1..].iter().cloned();
                imports
                    .paths
                    .push(base.iter().cloned().chain(rest).collect());
            }
        }
        imports
    }
}

impl<'ast> syn::visit::Visit<'ast> for Reader<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&item.tree, &mut Vec::new());
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.write(segments, None);
        syn::visit::visit_path(self, path);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.inline.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.inline.pop();
    }

    fn visit_item_macro(&mut self, item: &'ast syn::ItemMacro) {
        let exported = item.attrs.iter().any(|a| a.path().is_ident("macro_export"));
        if let (true, Some(name)) = (exported, &item.ident) {
            self.exported_macros.push(name.to_string());
        }
        syn::visit::visit_item_macro(self, item);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }

    fn visit_meta_list(&mut self, list: &'ast syn::MetaList) {
        self.tokens(list.tokens.clone());
        syn::visit::visit_meta_list(self, list);
    }

    /// `pub(crate)` and `pub(super)` say who may see an item; they import nothing.
    fn visit_vis_restricted(&mut self, _: &'ast syn::VisRestricted) {}
}

/// Everything a file imports from the rest of the crate, as paths from the
/// crate root: `crate::…` (and `$crate::…` in macros), `super::…` and
/// `self::…` (climbing from inside inline `mod x { … }` blocks too), and
/// paths through a name a `use` brought in (`use crate::auth::grants;` then
/// `grants::entity::…`); the external crates of `externals` it names; and
/// the macros it exports. `module` is the file's module path.
fn read_imports(source: &str, module: &[String], externals: &[&str]) -> Imports {
    let file = syn::parse_file(source).unwrap_or_else(|e| panic!("{module:?} does not parse: {e}"));
    let mut reader = Reader {
        module,
        externals,
        inline: Vec::new(),
        written: Vec::new(),
        exported_macros: Vec::new(),
    };
    syn::visit::Visit::visit_file(&mut reader, &file);
    reader.finish()
}

/// The most specific rule for a module path.
fn row_of<'r>(rules: &'r [Rule], module: &str) -> Option<&'r Rule> {
    rules
        .iter()
        .filter(|rule| module == rule.module || module.starts_with(&format!("{}::", rule.module)))
        .max_by_key(|rule| rule.module.len())
}

/// Inside a slice, the layers under the HTTP edge (its store, domain, entity,
/// listing, workflows, events, agenda) never reach up into its `views` or `api`:
/// what they return is the slice's own types, and the edge maps them.
const LAYERS_BELOW_THE_EDGE: [&str; 7] = [
    "store",
    "domain",
    "entity",
    "listing",
    "workflows",
    "events",
    "agenda",
];

fn below_the_edge(module: &str, path: &[String]) -> Option<String> {
    let layer = module.split("::").nth(1)?;
    let reached = path.get(1)?;
    (LAYERS_BELOW_THE_EDGE.contains(&layer) && (reached == "views" || reached == "api")).then(
        || {
            format!(
                "{module} imports `crate::{}`: a layer under the HTTP edge may not know its slice's `{reached}`",
                path.join("::")
            )
        },
    )
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

#[test]
fn the_code_follows_the_dependency_rules_in_architecture_md() {
    let rules = rules();
    let sources = sources();
    let modules: BTreeSet<String> = sources.iter().map(|(m, _)| m.clone()).collect();
    let externals = ["poem_openapi", "poem", "sea_orm"];

    // Macros exported at the crate root belong to the module defining them.
    let segments_of = |module: &str| -> Vec<String> {
        if module == "lib" || module == "main" {
            Vec::new()
        } else {
            module.split("::").map(str::to_owned).collect()
        }
    };
    let read: Vec<(&String, Imports)> = sources
        .iter()
        .map(|(module, source)| {
            (
                module,
                read_imports(source, &segments_of(module), &externals),
            )
        })
        .collect();
    let mut macro_home = BTreeMap::new();
    for (module, imports) in &read {
        for name in &imports.exported_macros {
            macro_home.insert(name.clone(), (*module).clone());
        }
    }

    let mut failures = Vec::new();
    for rule in &rules {
        let exists = rule.module == "lib"
            || rule.module == "main"
            || modules
                .iter()
                .any(|m| m == &rule.module || m.starts_with(&format!("{}::", rule.module)));
        if !exists {
            failures.push(format!(
                "ARCHITECTURE.md has a row for `{}`, which does not exist",
                rule.module
            ));
        }
        for name in rule
            .may_import
            .iter()
            .flatten()
            .chain(&rule.must_not_import)
        {
            let known =
                externals.contains(&name.as_str()) || rules.iter().any(|r| &r.module == name);
            if !known {
                failures.push(format!(
                    "ARCHITECTURE.md: `{}`'s row names `{name}`, which has no row",
                    rule.module
                ));
            }
        }
    }

    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, imports) in read {
        let Some(rule) = row_of(&rules, module) else {
            failures.push(format!(
                "src/{module}: not on ARCHITECTURE.md's map; add a row for it"
            ));
            continue;
        };
        for external in &imports.externals {
            if rule.must_not_import.contains(external) {
                failures.push(format!(
                    "{module} uses `{external}`, which `{}` must not import",
                    rule.module
                ));
            }
        }
        for path in imports.paths {
            let Some(first) = path.first() else { continue };
            let target = if modules.iter().any(|m| top(m) == first) {
                path.join("::")
            } else if let Some(home) = macro_home.get(first) {
                home.clone()
            } else {
                // An item of the crate root, such as `App`.
                "lib".to_owned()
            };
            if top(&target) == top(module) && target != "lib" {
                if let Some(layer) = below_the_edge(module, &path) {
                    failures.push(layer);
                }
                continue;
            }
            let Some(target_rule) = row_of(&rules, &target) else {
                continue;
            };
            if target_rule.module == rule.module {
                continue;
            }
            if path.iter().any(|segment| segment == "entity") {
                failures.push(format!(
                    "{module} imports `crate::{}`: another module's table entity; call its store",
                    path.join("::")
                ));
            }
            let allowed = rule
                .may_import
                .as_ref()
                .is_none_or(|may| may.contains(&target_rule.module));
            let forbidden = rule.must_not_import.contains(&target_rule.module);
            if !allowed || forbidden {
                failures.push(format!(
                    "{module} imports `crate::{}`, but `{}` may not import `{}`",
                    path.join("::"),
                    rule.module,
                    target_rule.module
                ));
            }
            edges
                .entry(rule.module.clone())
                .or_default()
                .insert(target_rule.module.clone());
        }
    }

    // No cycle between rows (edges between a row and its own submodule rows
    // are inside one module and do not count).
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            cycles.push(format!("{} -> {node}", path[at..].join(" -> ")));
            return;
        }
        if !done.insert(node.to_owned()) {
            return;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if top(next) != top(node) {
                visit(next, edges, path, done, cycles);
            }
        }
        path.pop();
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done, &mut cycles);
    }
    failures.extend(cycles.into_iter().map(|c| format!("import cycle: {c}")));

    // Each table's entity is defined in the module that owns it.
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for rule in &rules {
        for table in &rule.tables {
            if let Some(other) = owners.insert(table, &rule.module) {
                failures.push(format!(
                    "table `{table}` has two owners: {other}, {}",
                    rule.module
                ));
            }
        }
    }
    let mut defined = BTreeSet::new();
    for (module, source) in &sources {
        for part in source.split("table_name = \"").skip(1) {
            let Some((table, _)) = part.split_once('"') else {
                continue;
            };
            defined.insert(table.to_owned());
            match owners.get(table) {
                Some(owner)
                    if row_of(&rules, module).is_some_and(|r| top(&r.module) == top(owner)) => {}
                Some(owner) => failures.push(format!(
                    "{module} defines table `{table}`, which `{owner}` owns"
                )),
                None => failures.push(format!(
                    "{module} defines table `{table}`, which no row of ARCHITECTURE.md owns"
                )),
            }
        }
    }
    for table in owners.keys() {
        if !defined.contains(*table) {
            failures.push(format!(
                "ARCHITECTURE.md lists table `{table}`, which no entity defines"
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "the code and ARCHITECTURE.md disagree:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn the_source_reader_finds_grouped_nested_and_renamed_imports() {
    let source = r##"
        use crate::{a::b, c::{d::E, self}, f as g}; // crate::commented
        /// Doc text naming crate::in_docs is not code.
        #[derive(sea_orm::DeriveEntityModel)]
        struct S;
        fn l<'a>(x: &'a str) -> Vec<crate::m::N> {
            let s = "crate::in_a_string";
            let x = crate::h::i(1);
            let b = br#"{"crate::raw":1}"#;
            let c = '"';
            Vec::new()
        }
        pub(crate) fn visible() {}
        use poem::Request;
        #[macro_export]
        macro_rules! k { () => { $crate::j::k!() }; }
    "##;
    let read = read_imports(source, &[], &["poem", "sea_orm"]);
    let joined: BTreeSet<String> = read.paths.iter().map(|p| p.join("::")).collect();
    let expected = ["a::b", "c::d::E", "c", "f", "m::N", "h::i", "j::k"];
    assert_eq!(joined, expected.into_iter().map(str::to_owned).collect());
    assert_eq!(
        read.externals.into_iter().collect::<Vec<_>>(),
        ["poem", "sea_orm"]
    );
    assert_eq!(read.exported_macros, ["k"]);
}

#[test]
fn the_source_reader_follows_super_inline_modules_and_aliases() {
    let module = ["auth".to_owned()];
    let source = "use super::oauth::clients;\n\
         mod tests { use super::Scope; mod deeper { fn f() { super::super::super::users::x(); } } }\n\
         use crate::tasks::store; fn g() { store::entity::Entity::find(); }\n\
         use crate::reminders::store as reminder_store; fn h() { reminder_store::lock(); self::grants::y(); }";
    let read = read_imports(source, &module, &[]);
    let joined: BTreeSet<String> = read.paths.iter().map(|p| p.join("::")).collect();
    let expected = [
        "oauth::clients",
        "auth::Scope",
        "users::x",
        "tasks::store",
        "tasks::store::entity::Entity::find",
        "reminders::store",
        "reminders::store::lock",
        "auth::grants::y",
    ];
    assert_eq!(joined, expected.into_iter().map(str::to_owned).collect());
}

#[test]
fn a_store_reaching_up_into_its_slices_views_is_refused() {
    let path = |p: &str| p.split("::").map(str::to_owned).collect::<Vec<_>>();
    let refused = below_the_edge("tasks::store", &path("tasks::views::TaskView"));
    assert!(
        refused.is_some_and(|why| why.contains("tasks::store imports `crate::tasks::views::TaskView`")),
        "a store importing its slice's views must be reported"
    );
    assert!(below_the_edge("reminders::workflows", &path("reminders::api::ReminderApi")).is_some());
    // The edge itself maps to views, and the layers below may use each other.
    assert_eq!(
        below_the_edge("tasks::api", &path("tasks::views::TaskView")),
        None
    );
    assert_eq!(
        below_the_edge("tasks::store", &path("tasks::domain::Task")),
        None
    );
}
