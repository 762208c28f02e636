//! The shape of the source tree, checked from its own text: no import circles, no oversized
//! files, and a `lib.rs` tour that names every module.
//!
//! Why a test: the layering (server → relay → pool / upstream / store → conversation) and the
//! file sizes were reviewed once and found to drift within weeks; a test keeps them where the
//! review left them. The import reader is deliberately simple (it reads `crate::`, `super::` and
//! `self::` paths, `use` trees included, and skips comments and the inline `mod tests`), which is
//! enough for this codebase's style; it is not a Rust parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside the crate (`["upstream", "stream"]`); the crate root is empty.
type Module = Vec<String>;

/// Most lines of code (not blank, not comment, outside the inline tests) in one file of `src/`
/// or `tests/`.
const MAX_CODE_LINES: usize = 450;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable source folder")
        .map(|e| e.expect("readable entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file defines, or `None` for the binary's `main.rs`.
fn module_of(path: &Path) -> Option<Module> {
    let rel = path.strip_prefix(src_dir()).expect("under src");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if parts.is_empty() && stem == "main" {
        return None;
    }
    if stem != "mod" && !(parts.is_empty() && stem == "lib") {
        parts.push(stem.to_string());
    }
    Some(parts)
}

/// Whether the file holds only tests (`foo_tests.rs`, property tests included from a `cfg(test)`).
fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with("_tests.rs") || name.ends_with("_props.rs")
}

/// The file's code without its inline `#[cfg(test)] mod …` and without comments.
fn code_of(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut iter = text.lines().peekable();
    while let Some(line) = iter.next() {
        let t = line.trim();
        if t == "#[cfg(test)]"
            && iter
                .peek()
                .is_some_and(|n| n.trim_start().starts_with("mod ") && n.trim_end().ends_with('{'))
        {
            break;
        }
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        lines.push(line);
    }
    lines
}

/// Expands one `use` tree (`crate::{a, b::{c, d}}`) into its paths.
fn expand_use(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let joined = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (i, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use(&inner[start..i], &joined, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand_use(&inner[start..], &joined, out);
    } else {
        let path = tree.split(" as ").next().unwrap_or("").trim();
        if !path.is_empty() {
            out.push(join(prefix, path));
        }
    }
}

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}::{rest}"),
    }
}

/// Every `crate::`/`super::`/`self::` path the code names.
fn paths_in(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `use` statements, trees expanded.
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
            let tree: String = after[..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if tree.starts_with("crate") || tree.starts_with("super") || tree.starts_with("self") {
                expand_use(&tree, "", &mut out);
            }
        }
        rest = &after[end.min(after.len())..];
    }
    // Paths written inline (`crate::metrics::count(...)`).
    let bytes = code.as_bytes();
    for root in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(root) {
            let at = from + i;
            from = at + root.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let tail: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let tail = tail.trim_end_matches(':');
            if tail.contains("::") {
                out.push(tail.to_string());
            }
        }
    }
    out
}

/// The module a path names: the longest prefix of it that is a known module.
fn resolve(from: &Module, path: &str, known: &BTreeSet<Module>) -> Option<Module> {
    let mut parts = path.split("::").filter(|p| !p.is_empty()).peekable();
    let mut base: Module = match parts.next()? {
        "crate" => Vec::new(),
        "self" => from.clone(),
        "super" => from[..from.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    while parts.peek() == Some(&"super") {
        parts.next();
        base.pop();
    }
    let mut best = known.contains(&base).then(|| base.clone());
    for p in parts {
        base.push(p.to_string());
        if known.contains(&base) {
            best = Some(base.clone());
        }
    }
    best
}

struct Tree {
    /// Module → the modules its code names.
    edges: BTreeMap<Module, BTreeSet<Module>>,
    /// Module → (file, lines of code).
    sizes: Vec<(PathBuf, usize)>,
}

fn read_tree() -> Tree {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut texts = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable file");
        texts.push((path, text));
    }
    let known: BTreeSet<Module> = texts.iter().filter_map(|(p, _)| module_of(p)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    let mut sizes = Vec::new();
    for (path, text) in &texts {
        let code = code_of(text);
        sizes.push((path.clone(), code.len()));
        let (Some(module), false) = (module_of(path), is_test_file(path)) else {
            continue;
        };
        let joined = code.join("\n");
        for p in paths_in(&joined) {
            if let Some(target) = resolve(&module, &p, &known)
                && target != module
            {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    Tree { edges, sizes }
}

/// Edges between siblings: `a → b` counts for the children of their deepest common parent
/// (a module naming its own parent or child is the normal shape of a Rust folder, not a circle).
fn sibling_graphs(tree: &Tree) -> BTreeMap<Module, BTreeMap<String, BTreeSet<String>>> {
    let mut graphs: BTreeMap<Module, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (a, targets) in &tree.edges {
        for b in targets {
            let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            if common < a.len() && common < b.len() {
                graphs
                    .entry(a[..common].to_vec())
                    .or_default()
                    .entry(a[common].clone())
                    .or_default()
                    .insert(b[common].clone());
            }
        }
    }
    graphs
}

/// The strongly connected groups of more than one node (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, n: &'g str) {
            let i = self.index.len();
            self.index.insert(n, i);
            self.low.insert(n, i);
            self.stack.push(n);
            self.on_stack.insert(n);
            let graph = self.graph;
            for w in graph.get(n).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let lw = self.low[w.as_str()];
                    let ln = self.low.get_mut(n).expect("visited");
                    *ln = (*ln).min(lw);
                } else if self.on_stack.contains(w.as_str()) {
                    let iw = self.index[w.as_str()];
                    let ln = self.low.get_mut(n).expect("visited");
                    *ln = (*ln).min(iw);
                }
            }
            if self.low[n] == self.index[n] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    group.push(w.to_string());
                    if w == n {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for n in graph.keys() {
        if !walk.index.contains_key(n.as_str()) {
            walk.visit(n);
        }
    }
    walk.found
}

#[test]
fn no_module_imports_in_a_circle() {
    let tree = read_tree();
    let mut found = Vec::new();
    for (parent, graph) in sibling_graphs(&tree) {
        for group in circles(&graph) {
            let at = if parent.is_empty() {
                "crate".to_string()
            } else {
                parent.join("/")
            };
            found.push(format!("in {at}: {}", group.join(" <-> ")));
        }
    }
    assert!(
        found.is_empty(),
        "modules that import each other (make the dependency point one way):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_circle_finder_finds_circles() {
    // The reader itself, on a made-up tree: a → b → c → a is one circle; d → a is not.
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")] {
        graph.entry(a.into()).or_default().insert(b.into());
    }
    assert_eq!(circles(&graph), vec![vec!["a", "b", "c"]]);
    let mut paths =
        paths_in("use crate::{config::{A, B}, pool::X as Y};\nlet x = super::frame::parse(y);");
    paths.sort();
    assert_eq!(
        paths,
        [
            "crate::config::A",
            "crate::config::B",
            "crate::pool::X",
            "super::frame::parse"
        ]
    );
}

#[test]
fn no_file_is_over_the_size_limit() {
    let mut sizes = read_tree().sizes;
    let mut tests = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
        &mut tests,
    );
    for path in tests {
        let text = std::fs::read_to_string(&path).expect("readable test file");
        sizes.push((path, code_of(&text).len()));
    }
    let over: Vec<String> = sizes
        .iter()
        .filter(|(_, n)| *n > MAX_CODE_LINES)
        .map(|(p, n)| format!("{} ({n} lines of code)", p.display()))
        .collect();
    assert!(
        over.is_empty(),
        "files over {MAX_CODE_LINES} lines of code (split them by concern; tests may move to a \
         sibling *_tests.rs):\n{}",
        over.join("\n")
    );
}

#[test]
fn the_lib_tour_names_every_module() {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).expect("lib.rs");
    let tour: String = lib
        .lines()
        .filter(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .filter(|m| !tour.contains(&format!("[`{m}`]")) && !tour.contains(&format!("`{m}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "the lib.rs tour does not name: {missing:?}"
    );
}
