//! The shape of `src/`, checked: imports run one way (no two files import each other, directly
//! or around a circle), the lower layers import nothing of the upper ones, and every environment
//! variable is read in `src/config/`. `cargo test --test api architecture -- --nocapture` prints
//! the import circles and the files over 400 lines.
//!
//! An import is any path a file names into the crate: a `use` (braces expanded), or a path
//! written in the code that starts at `crate`, `super`, `self`, `$crate`, a child module the file
//! declares, or a name the file imported; it counts for the file that path lands in (the
//! longest prefix that is a module file). Declaring a child module (`mod x;`) is not an
//! import. Comments, strings and `#[cfg(test)]` modules are left out.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

mod source;

use source::{absolute, is_ident_char, landing, strip, tokens, use_paths, without_tests};

/// One source file: where it sits in the module tree and what it names.
struct File {
    /// Path relative to the crate root, e.g. `src/http/ws.rs`.
    name: String,
    /// Module path, e.g. `["http", "ws"]`; empty for `lib.rs`.
    module: Vec<String>,
    /// Whether it is the binary's root (it names the library as `bff::`).
    binary: bool,
    /// Its text without comments, strings and test modules.
    code: String,
    /// Its line count, as `wc -l` counts.
    lines: usize,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `.rs` file under `root/src`.
fn files(root: &Path) -> Vec<File> {
    let src = root.join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).unwrap();
            let mut module: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let binary = module == ["main"];
            if module == ["lib"] || binary || module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            File {
                name: format!("src/{}", relative.display()),
                module,
                binary,
                lines: text.lines().count(),
                code: strip(&without_tests(&text)),
            }
        })
        .collect()
}

/// The import graph: each file and the files it imports.
fn graph(files: &[File]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: HashMap<Vec<String>, &str> = files
        .iter()
        .filter(|f| !f.binary)
        .map(|f| (f.module.clone(), f.name.as_str()))
        .collect();
    let mut edges = BTreeMap::new();
    for file in files {
        let tokens = tokens(&file.code);
        let mut children = BTreeSet::new();
        for (i, token) in tokens.iter().enumerate() {
            if token == "mod" && tokens.get(i + 2).is_some_and(|t| t == ";") {
                children.insert(tokens[i + 1].clone());
            }
        }
        let mut named: Vec<Vec<String>> = Vec::new();
        let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
        // `use` statements first, so that the names they bind resolve the paths written later.
        let mut i = 0;
        let mut in_use = vec![false; tokens.len()];
        while i < tokens.len() {
            let starts_use = tokens[i] == "use"
                && (i == 0
                    || matches!(tokens[i - 1].as_str(), ";" | "}" | "{" | "pub" | ")" | "]"));
            if starts_use {
                let end = (i..tokens.len())
                    .find(|&j| tokens[j] == ";")
                    .unwrap_or(tokens.len());
                for flag in &mut in_use[i..end] {
                    *flag = true;
                }
                for (path, bound) in use_paths(&tokens[i + 1..end]) {
                    if let Some(absolute) = absolute(file, &path, &children, &aliases) {
                        if let Some(bound) = bound {
                            aliases.insert(bound, absolute.clone());
                        }
                        named.push(absolute);
                    }
                }
                i = end;
            }
            i += 1;
        }
        // Paths written in the code: a word followed by `::`, not itself after `::`.
        for i in 0..tokens.len() {
            if in_use[i]
                || tokens.get(i + 1).is_none_or(|t| t != "::")
                || (i > 0 && tokens[i - 1] == "::")
                || !tokens[i].chars().next().is_some_and(is_ident_char)
            {
                continue;
            }
            let mut path = vec![tokens[i].clone()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|t| t == "::")
                && tokens
                    .get(j + 1)
                    .is_some_and(|t| t.chars().next().is_some_and(is_ident_char))
            {
                path.push(tokens[j + 1].clone());
                j += 2;
            }
            if let Some(absolute) = absolute(file, &path, &children, &aliases) {
                named.push(absolute);
            }
        }
        let targets: BTreeSet<String> = named
            .iter()
            .filter_map(|path| landing(&modules, path))
            .filter(|target| *target != file.name)
            .map(str::to_owned)
            .collect();
        edges.insert(file.name.clone(), targets);
    }
    edges
}

/// The strongly connected components of more than one file: the import circles (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        for target in state.graph.get(node).into_iter().flatten() {
            let target = target.as_str();
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[target].min(state.low[node]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.index[target].min(state.low[node]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.to_owned());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.out.sort();
    state.out
}

fn root() -> PathBuf {
    match std::env::var_os("BFF_ARCHITECTURE_ROOT") {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

fn folder(file: &str) -> &str {
    file.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// Each file's imports, by file name.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Prints the circles and the long files (with `--nocapture`), and returns the files, the
/// graph and the circles.
fn report() -> (Vec<File>, Graph, Vec<Vec<String>>) {
    let files = files(&root());
    let graph = graph(&files);
    let circles = circles(&graph);
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    println!(
        "{} files, {} lines, {} imports between files",
        files.len(),
        files.iter().map(|f| f.lines).sum::<usize>(),
        edges
    );
    let mutual: Vec<(&String, &String)> = graph
        .iter()
        .flat_map(|(a, targets)| targets.iter().map(move |b| (a, b)))
        .filter(|(a, b)| a < b && graph.get(*b).is_some_and(|t| t.contains(*a)))
        .collect();
    println!("pairs of files that import each other: {}", mutual.len());
    for (a, b) in &mutual {
        println!("  {a} <-> {b}");
    }
    if std::env::var_os("BFF_ARCHITECTURE_EDGES").is_some() {
        for (file, targets) in &graph {
            println!(
                "  {file} -> {}",
                targets.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    println!(
        "import circles (strongly connected files): {}",
        circles.len()
    );
    for circle in &circles {
        let folders: BTreeSet<&str> = circle.iter().map(|f| folder(f)).collect();
        let across = if folders.len() > 1 {
            "across folders"
        } else {
            "within a folder"
        };
        println!("  {} files, {across}: {}", circle.len(), circle.join(", "));
    }
    let mut long: Vec<&File> = files.iter().filter(|f| f.lines > 400).collect();
    long.sort_by_key(|f| std::cmp::Reverse(f.lines));
    println!("files over 400 lines: {}", long.len());
    for file in long {
        println!("  {:>5} {}", file.lines, file.name);
    }
    (files, graph, circles)
}

#[test]
fn no_two_files_import_each_other_directly_or_around_a_circle() {
    let (_, _, circles) = report();
    assert!(
        circles.is_empty(),
        "import circles (run with --nocapture for the report): {circles:?}"
    );
}

#[test]
fn configuration_errors_and_storage_sit_below_what_uses_them() {
    let (_, graph, _) = report();
    // Each folder (or file) on the left imports nothing from those on the right.
    let rules: &[(&str, &[&str])] = &[
        (
            "src/config",
            &[
                "src/db",
                "src/graphql",
                "src/http",
                "src/pipeline",
                "src/live",
                "src/auth",
                "src/stripe",
            ],
        ),
        (
            "src/error.rs",
            &[
                "src/db",
                "src/graphql",
                "src/http",
                "src/pipeline",
                "src/live",
            ],
        ),
        (
            "src/metrics.rs",
            &[
                "src/db",
                "src/graphql",
                "src/http",
                "src/pipeline",
                "src/live",
                "src/stripe",
            ],
        ),
        (
            "src/db",
            &[
                "src/graphql",
                "src/http",
                "src/pipeline",
                "src/live",
                "src/stripe",
            ],
        ),
        ("src/live", &["src/graphql", "src/http", "src/pipeline"]),
        (
            "src/auth",
            &["src/graphql", "src/http", "src/pipeline", "src/live"],
        ),
        ("src/graphql", &["src/http", "src/pipeline"]),
        ("src/pipeline", &["src/http"]),
    ];
    let mut broken = Vec::new();
    for (from, forbidden) in rules {
        for (file, targets) in &graph {
            if !(file == from
                || file.starts_with(&format!("{from}/"))
                || file == &format!("{from}.rs"))
            {
                continue;
            }
            for target in targets {
                if forbidden.iter().any(|f| {
                    target == f
                        || target.starts_with(&format!("{f}/"))
                        || target == &format!("{f}.rs")
                }) {
                    broken.push(format!("{file} imports {target}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn environment_variables_are_read_only_in_config() {
    let (files, _, _) = report();
    let readers: Vec<&str> = files
        .iter()
        .filter(|f| !f.name.starts_with("src/config"))
        .filter(|f| {
            ["env::var(", "env::var_os(", "env::vars(", "env::vars_os("]
                .iter()
                .any(|call| f.code.contains(call))
                || f.code.contains("dotenvy::")
        })
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(readers, Vec::<&str>::new());
}

/// The application is put together in one place (`src/app.rs`): nothing below the transports
/// imports it, every long-lived client is constructed there (the one-shot commands `bff check`
/// and `bff stripe sync` build their own for their one run), and background work starts only
/// through `src/tasks.rs` (what is spawned elsewhere lives for one connection or request, or is
/// the embedded S3 store of `bff dev` and the tests).
#[test]
fn the_application_is_assembled_in_one_place() {
    let (files, graph, _) = report();
    let importers: Vec<&str> = graph
        .iter()
        .filter(|(_, targets)| targets.contains("src/app.rs"))
        .map(|(file, _)| file.as_str())
        .filter(|file| !(file.starts_with("src/http") || *file == "src/dev.rs"))
        .collect();
    assert_eq!(
        importers,
        Vec::<&str>::new(),
        "only the transports and `bff dev` hand the app on"
    );
    let tasks_imports: Vec<&String> = graph.get("src/tasks.rs").into_iter().flatten().collect();
    assert!(
        tasks_imports.is_empty(),
        "src/tasks.rs imports {tasks_imports:?}"
    );
    let places = |call: &str| -> Vec<&str> {
        files
            .iter()
            .filter(|f| f.code.contains(call))
            .map(|f| f.name.as_str())
            .collect()
    };
    assert_eq!(places("StripeClient::new("), ["src/app.rs", "src/main.rs"]);
    assert_eq!(places("Redis::new("), ["src/app.rs", "src/check.rs"]);
    assert_eq!(places("Photos::new("), ["src/app.rs"]);
    assert_eq!(places("Store::new("), ["src/check.rs", "src/storage.rs"]);
    assert_eq!(
        places("tokio::spawn("),
        [
            "src/http/export.rs",
            "src/http/server.rs",
            "src/storage/embedded.rs"
        ],
        "background work starts through src/tasks.rs (App::start)"
    );
}
