//! The documentation stands alone: the README's first screen holds the two commands, and every
//! link in `README.md`, `CHANGELOG.md` and `docs/` points at a file of this repository (and a
//! heading that exists), never outside it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("CHANGELOG.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> HashSet<String> {
    let mut in_code = false;
    let mut found = HashSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// The `](target)` links of a Markdown text, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            found.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn every_link_stays_in_the_repository_and_lands() {
    let mut broken = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        for link in links(&text) {
            if link.starts_with("https://") || link.starts_with("http://") {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let Ok(resolved) = target.canonicalize() else {
                broken.push(format!("{name}: {link} does not exist"));
                continue;
            };
            if !resolved.starts_with(root().canonicalize().unwrap()) {
                broken.push(format!("{name}: {link} leaves the repository"));
                continue;
            }
            if !fragment.is_empty() {
                let target_text = std::fs::read_to_string(&resolved).unwrap_or_default();
                if !anchors(&target_text).contains(fragment) {
                    broken.push(format!("{name}: {link} names no heading"));
                }
            }
        }
        assert!(
            !text.contains("../shared"),
            "{name} points outside the repository"
        );
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn the_readme_starts_with_what_bff_is_and_the_two_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let first_screen: String = readme.lines().take(30).collect::<Vec<_>>().join("\n");
    assert!(
        first_screen.contains("cargo run -- dev") && first_screen.contains("\ncargo test\n"),
        "{first_screen}"
    );
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "the README has {lines} lines: details belong in docs/"
    );
    assert!(root().join("LICENSE").is_file());
}

#[test]
fn the_stripe_guide_names_every_event_bff_handles_in_the_endpoint_setup() {
    let guide = std::fs::read_to_string(root().join("docs/stripe.md")).unwrap();
    let setup = &guide[guide
        .find("Add a webhook endpoint")
        .expect("the setup step")..];
    for kind in bff::stripe::EventKind::ALL.iter().map(|kind| kind.as_str()) {
        assert!(
            setup.contains(&format!("`{kind}`")),
            "docs/stripe.md's step 3 omits {kind}"
        );
        assert!(
            guide[..guide.find("## Connecting").unwrap()].contains(kind),
            "docs/stripe.md's table omits {kind}"
        );
    }
}
