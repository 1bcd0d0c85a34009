//! ARCHITECTURE.md's dependency rules, checked against the source: every
//! module is on the map, imports only what its row allows and nothing its row
//! forbids, the rows' import graph has no cycle, and each table's entity lives
//! in (and is imported only from) the module that owns it. Reading `src/` for
//! `crate::…` paths is enough; the failure message names the file and rule.

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

/// The source without comments and without the contents of string and
/// character literals, so that only code is searched.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            // Byte and C raw strings (br"…", cr#"…"#) start with a prefix letter.
            && (i == 0
                || !ident(chars[i - 1])
                || (matches!(chars[i - 1], 'b' | 'c') && (i < 2 || !ident(chars[i - 2]))))
            && matches!(next, Some('#') | Some('"'))
        {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            j += 1;
            while j < chars.len()
                && !(chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')))
            {
                j += 1;
            }
            i = j + 1 + hashes;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1f}'); otherwise a lifetime.
            let literal_end = if next == Some('\\') {
                // From past the escaped character, so that '\'' ends where it should.
                (i + 3..chars.len()).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match literal_end {
                Some(end) => {
                    i = end + 1;
                    out.push_str("' '");
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The paths a use tree or path expression starting at `at` names, each as
/// its segments after `prefix`: `{a::b, c::{d, e}}` gives `a::b`, `c::d`,
/// `c::e`.
fn paths_at(code: &[char], at: usize, prefix: &[String]) -> (Vec<Vec<String>>, usize) {
    fn skip_space(code: &[char], mut i: usize) -> usize {
        while i < code.len() && code[i].is_whitespace() {
            i += 1;
        }
        i
    }
    fn tree(code: &[char], i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
        let mut i = skip_space(code, i);
        if code.get(i) == Some(&'{') {
            i += 1;
            loop {
                i = skip_space(code, i);
                match code.get(i) {
                    Some('}') => return i + 1,
                    Some(',') => i += 1,
                    Some(_) => i = tree(code, i, prefix, out),
                    None => return i,
                }
            }
        }
        let start = i;
        while i < code.len() && (code[i].is_alphanumeric() || code[i] == '_') {
            i += 1;
        }
        if start == i {
            // `*`, or the end of a path expression.
            if !prefix.is_empty() {
                out.push(prefix.to_vec());
            }
            return i + usize::from(code.get(i) == Some(&'*'));
        }
        let segment: String = code[start..i].iter().collect();
        let mut path = prefix.to_vec();
        if segment != "self" {
            path.push(segment);
        }
        let after = skip_space(code, i);
        if code.get(after) == Some(&':') && code.get(after + 1) == Some(&':') {
            return tree(code, after + 2, &path, out);
        }
        out.push(path);
        // Skip a rename (`as name`) up to the next separator.
        let mut j = after;
        while j < code.len() && !matches!(code[j], ',' | '}' | ';' | '(' | ')' | '!' | '<' | '>') {
            j += 1;
        }
        if code[after..j].iter().collect::<String>().starts_with("as ") {
            j
        } else {
            i
        }
    }
    let mut out = Vec::new();
    let end = tree(code, at, prefix, &mut out);
    (out, end)
}

/// Everything a file imports from the rest of the crate, as paths from the
/// crate root: `crate::…` (and `$crate::…` in macros), `super::…` (inline
/// `mod x { … }` blocks are followed, so it climbs from the right place),
/// and paths through a name such an import brought in (`use
/// crate::auth::grants;` then `grants::entity::…`); and the external crates
/// it names from `names`. `module` is the file's module path.
fn imports(code: &str, module: &[String], names: &[&str]) -> (Vec<Vec<String>>, BTreeSet<String>) {
    let chars: Vec<char> = code.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let word_at = |i: usize| {
        let end = (i..chars.len())
            .find(|&k| !ident(chars[k]))
            .unwrap_or(chars.len());
        (chars[i..end].iter().collect::<String>(), end)
    };
    let colons_after = |i: usize| {
        let next = (i..chars.len())
            .find(|&k| !chars[k].is_whitespace())
            .unwrap_or(chars.len());
        (chars.get(next) == Some(&':') && chars.get(next + 1) == Some(&':')).then_some(next + 2)
    };
    let mut paths = Vec::new();
    // Where those paths were written, so that the alias pass skips them.
    let mut read: Vec<(usize, usize)> = Vec::new();
    let mut externals = BTreeSet::new();
    // Inline modules open at this point: (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut pending_mod: Option<String> = None;
    let mut depth = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    inline.push((name, depth));
                }
            }
            '}' => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            ';' => pending_mod = None,
            _ => {}
        }
        let starts_word = ident(c) && (i == 0 || !ident(chars[i - 1]));
        if !starts_word {
            i += 1;
            continue;
        }
        let after_path = i >= 2 && chars[i - 1] == ':' && chars[i - 2] == ':';
        let (word, end) = word_at(i);
        match word.as_str() {
            "mod" => {
                let next = (end..chars.len())
                    .find(|&k| !chars[k].is_whitespace())
                    .unwrap_or(chars.len());
                pending_mod = Some(word_at(next).0);
            }
            "crate" if !after_path => {
                if let Some(at) = colons_after(end) {
                    let (found, to) = paths_at(&chars, at, &[]);
                    paths.extend(found);
                    read.push((i, to));
                }
            }
            "super" if !after_path => {
                let mut base: Vec<String> = module
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(name, _)| name.clone()))
                    .collect();
                let mut at = i;
                let mut climbed = true;
                loop {
                    let (step, step_end) = word_at(at);
                    match (step.as_str(), colons_after(step_end)) {
                        ("super", Some(next)) => {
                            climbed &= base.pop().is_some();
                            at = next;
                            while chars.get(at).is_some_and(|c| c.is_whitespace()) {
                                at += 1;
                            }
                        }
                        _ => break,
                    }
                }
                if climbed {
                    let (found, to) = paths_at(&chars, at, &base);
                    paths.extend(found);
                    read.push((i, to));
                }
            }
            name if !after_path && names.contains(&name) && colons_after(end).is_some() => {
                externals.insert(name.to_owned());
            }
            _ => {}
        }
        i = end;
    }
    // Names the imports brought in, used as the start of a path.
    let aliases: BTreeMap<String, Vec<String>> = paths
        .iter()
        .filter_map(|path| Some((path.last()?.clone(), path.clone())))
        .collect();
    let mut through_aliases = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if let Some(&(_, to)) = read.iter().find(|(from, to)| (*from..*to).contains(&i)) {
            i = to;
            continue;
        }
        let starts_word =
            ident(chars[i]) && (i == 0 || !(ident(chars[i - 1]) || chars[i - 1] == ':'));
        if !starts_word {
            i += 1;
            continue;
        }
        let (word, end) = word_at(i);
        if let (Some(path), Some(at)) = (aliases.get(&word), colons_after(end)) {
            through_aliases.extend(paths_at(&chars, at, path).0);
        }
        i = end;
    }
    paths.extend(through_aliases);
    (paths, externals)
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
    let mut macro_home = BTreeMap::new();
    for (module, source) in &sources {
        for part in code_only(source).split("#[macro_export]").skip(1) {
            if let Some(name) = part
                .trim_start()
                .strip_prefix("macro_rules!")
                .and_then(|rest| rest.split_whitespace().next())
            {
                macro_home.insert(name.to_owned(), module.clone());
            }
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
    for (module, source) in &sources {
        let Some(rule) = row_of(&rules, module) else {
            failures.push(format!(
                "src/{module}: not on ARCHITECTURE.md's map; add a row for it"
            ));
            continue;
        };
        let code = code_only(source);
        let segments: Vec<String> = if module == "lib" || module == "main" {
            Vec::new()
        } else {
            module.split("::").map(str::to_owned).collect()
        };
        let (paths, named_externals) = imports(&code, &segments, &externals);
        for external in &named_externals {
            if rule.must_not_import.contains(external) {
                failures.push(format!(
                    "{module} uses `{external}`, which `{}` must not import",
                    rule.module
                ));
            }
        }
        for path in paths {
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
    let code = code_only(
        "use crate::{a::b, c::{d::E, self}, f as g}; // crate::commented\n\
         let s = \"crate::in_a_string\"; let x = crate::h::i(1); $crate::j::k!();\n\
         let c = '\"'; fn l<'a>(x: &'a str) {} use poem::Request;\n\
         let b = br#\"{\"crate::raw\":1}\"#; let q = '\\''; let o = b'{';",
    );
    let (paths, externals) = imports(&code, &[], &["poem", "sea_orm"]);
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(joined, ["a::b", "c::d::E", "c", "f", "h::i", "j::k"]);
    assert_eq!(externals.into_iter().collect::<Vec<_>>(), ["poem"]);
}

#[test]
fn the_source_reader_follows_super_inline_modules_and_aliases() {
    let module = ["auth".to_owned()];
    let code = code_only(
        "use super::oauth::clients;\n\
         mod tests { use super::Scope; mod deeper { fn f() { super::super::super::users::x(); } } }\n\
         use crate::tasks::store; fn g() { store::entity::Entity::find(); }",
    );
    let (paths, _) = imports(&code, &module, &[]);
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        [
            "oauth::clients",
            "auth::Scope",
            "users::x",
            "tasks::store",
            "tasks::store::entity::Entity::find",
        ]
    );
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
